//! Turtle from a peer, parsed and shaped into the JSON-LD tree the COAR model reads
//! (`coar_ldn::Dataset::parse_turtle_within`, `to_json_ld_within`), with small budgets so
//! that the fuzzer reaches them. Beyond "never panics, never recurses past the depth": what
//! comes out stays within the output budget.

#![no_main]

use std::time::Duration;

use coar_ldn::{Budget, Dataset};
use libfuzzer_sys::fuzz_target;

mod common;
use common::tolerate_caught_parser_panics;


const BUDGET: Budget = Budget {
    max_triples: 500,
    max_depth: 12,
    max_output_bytes: 64 * 1024,
    max_time: Duration::from_secs(5),
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    tolerate_caught_parser_panics();
    let Ok(dataset) = Dataset::parse_turtle_within(text, Some("https://peer.example/"), &BUDGET)
    else {
        return;
    };
    assert!(dataset.len() <= BUDGET.max_triples);
    if let Ok(tree) = dataset.to_json_ld_within(&BUDGET) {
        // The budget counts strings as they go out, with a margin for punctuation; JSON
        // escaping may grow a string up to six times.
        let size = tree.to_string().len();
        assert!(size <= 6 * BUDGET.max_output_bytes + 64, "{size} bytes of JSON-LD");
    }
});
