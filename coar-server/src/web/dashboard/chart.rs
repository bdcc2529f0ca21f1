//! The overview's bar chart of notifications per day, as inline SVG drawn on the server.

use std::fmt::Write;

use chrono::NaiveDate;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 180;
const LEFT: u32 = 40;
const BOTTOM: u32 = 24;
const TOP: u32 = 10;

/// An SVG bar chart of `(day, count)`, oldest first. Only numbers and dates go into it, so
/// it needs no escaping; every bar has a `<title>` for a tooltip and screen readers.
pub fn per_day(days: &[(NaiveDate, u64)]) -> String {
    let max = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    // A round top for the scale: 1, 2, 5 × a power of ten.
    let mut top = 1u64;
    'scale: loop {
        for step in [1, 2, 5] {
            if top * step >= max {
                top *= step;
                break 'scale;
            }
        }
        top *= 10;
    }
    let plot_w = WIDTH - LEFT - 8;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = f64::from(plot_w) / days.len().max(1) as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg"><title id="chart-title">Notifications per day, last {} days</title>"#,
        days.len()
    );
    for (value, label) in [
        (0, "0".to_owned()),
        (top / 2, (top / 2).to_string()),
        (top, top.to_string()),
    ] {
        let y = f64::from(TOP) + f64::from(plot_h) * (1.0 - value as f64 / top as f64);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{label}</text>"#,
            WIDTH - 8,
            LEFT - 6,
            y + 4.0
        );
    }
    for (i, (day, n)) in days.iter().enumerate() {
        let h = f64::from(plot_h) * (*n as f64 / top as f64);
        let x = f64::from(LEFT) + slot * i as f64 + slot * 0.15;
        let y = f64::from(TOP + plot_h) - h;
        let _ = write!(
            svg,
            r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}"><title>{}: {n}</title></rect>"#,
            slot * 0.7,
            day.format("%Y-%m-%d")
        );
        if i % 5 == 0 || i + 1 == days.len() {
            let _ = write!(
                svg,
                r#"<text class="axis" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                x + slot * 0.35,
                HEIGHT - 6,
                day.format("%b %-d")
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_a_round_top() {
        let d = |i| NaiveDate::from_ymd_opt(2026, 11, i).unwrap();
        let svg = per_day(&[(d(1), 0), (d(2), 7), (d(3), 3)]);
        assert_eq!(svg.matches("<rect").count(), 3);
        // 7 rounds up to 10: the axis says 10, and the tallest bar fills 70 % of the plot.
        assert!(svg.contains(">10</text>"), "{svg}");
        assert!(svg.contains("<title>2026-11-02: 7</title>"));
        let plot_h = f64::from(HEIGHT - BOTTOM - TOP);
        assert!(
            svg.contains(&format!("height=\"{:.1}\"", plot_h * 0.7)),
            "{svg}"
        );
        assert!(per_day(&[(d(1), 0)]).contains(">1</text>"));
    }
}
