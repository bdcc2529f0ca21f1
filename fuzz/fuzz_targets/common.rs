//! What the fuzz targets share.

/// Lets panics inside sophia's Turtle lexer unwind instead of aborting. The product catches
/// them (`Dataset::parse_turtle_within` answers a malformed document: sophia 0.10 panics
/// on some escapes and on a quote before a non-ASCII character in a long string), and the
/// fuzzer should go on looking past them; libFuzzer's hook aborts on every panic, caught or
/// not. Any other panic still aborts, and one that escapes the product is still a crash.
pub fn tolerate_caught_parser_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let aborting = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.location().is_some_and(|l| l.file().contains("/sophia_turtle-")) {
                return;
            }
            aborting(info);
        }));
    });
}
