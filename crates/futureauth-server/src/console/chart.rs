//! The "sends per day" chart: an SVG drawn on the server, one stacked bar per day (sent,
//! failed, queued), each segment split by channel with a tooltip. Delivered and complained
//! messages count as sent, undelivered and bounced ones as failed.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::store::{DailyCount, MessageChannel};

const STATUSES: [(&str, &str); 3] = [
    ("sent", "#16a34a"),
    ("failed", "#dc2626"),
    ("queued", "#d97706"),
];
/// The sign-in channels, always drawn in this order (webhook events are no sends).
const CHANNELS: [&str; 3] = [
    MessageChannel::Email.as_str(),
    MessageChannel::Sms.as_str(),
    MessageChannel::MagicLink.as_str(),
];
const HEIGHT: i64 = 200;
const LEFT: i64 = 36;
const BOTTOM: i64 = 24;
const TOP: i64 = 10;

fn esc(s: &str) -> String {
    html_escape::encode_text(s).into_owned()
}

/// SVG for the `days` days ending with `today` (days since the Unix epoch, UTC).
/// `width` is the viewBox width (the SVG scales to its container; wider for full-width cards).
pub fn sends_per_day(counts: &[DailyCount], today: i64, days: i64, width: i64) -> String {
    #[allow(non_snake_case)]
    let WIDTH = width.max(200);
    let first = today - days + 1;
    // day -> status -> channel -> count
    let mut grid: BTreeMap<i64, BTreeMap<&str, BTreeMap<String, i64>>> = BTreeMap::new();
    for c in counts.iter().filter(|c| c.day >= first && c.day <= today) {
        // Three bars: accepted by the provider (whatever it reported later, but a failure
        // to deliver), failed to reach the person, still waiting.
        let status = match c.status.as_str() {
            "sent" | "delivered" | "complained" => "sent",
            "failed" | "undelivered" | "bounced" => "failed",
            // Test-mode sends are never sent: not part of the traffic.
            "test" => continue,
            _ => "queued",
        };
        *grid
            .entry(c.day)
            .or_default()
            .entry(status)
            .or_default()
            .entry(c.channel.clone())
            .or_default() += c.count;
    }
    let day_total = |d: i64| -> i64 {
        grid.get(&d)
            .map(|s| s.values().flat_map(|c| c.values()).sum())
            .unwrap_or(0)
    };
    let max = (first..=today).map(day_total).max().unwrap_or(0).max(1);
    // A round, even top of the scale (2, 4, 10, 20, 40, 100, …) so the middle line is whole.
    let mut scale = 2;
    while scale < max {
        scale = if scale.to_string().starts_with('4') {
            scale * 5 / 2
        } else {
            scale * 2
        };
    }
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT) / days.max(1);
    let bar = (slot * 2 / 3).max(2);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"Sends per day\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for i in 0..=2 {
        let v = scale * i / 2;
        let y = TOP + plot_h - plot_h * i / 2;
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{WIDTH}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#e5e7eb\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#6b7280\">{v}</text>",
            LEFT - 6,
            y + 4
        );
    }
    for (i, day) in (first..=today).enumerate() {
        let i = i as i64;
        let x = LEFT + i * slot + (slot - bar) / 2;
        let date = chrono::DateTime::from_timestamp(day * 86_400, 0)
            .map(|t| t.format("%b %-d").to_string())
            .unwrap_or_default();
        let full_date = chrono::DateTime::from_timestamp(day * 86_400, 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let mut y = TOP + plot_h;
        if let Some(statuses) = grid.get(&day) {
            for (status, color) in STATUSES {
                let Some(channels) = statuses.get(status) else {
                    continue;
                };
                for channel in CHANNELS.iter().map(|c| (*c).to_owned()).chain(
                    channels
                        .keys()
                        .filter(|k| !CHANNELS.contains(&k.as_str()))
                        .cloned(),
                ) {
                    let n = channels.get(&channel).copied().unwrap_or(0);
                    if n == 0 {
                        continue;
                    }
                    let h = (n * plot_h / scale).max(1);
                    y -= h;
                    let _ = write!(
                        svg,
                        "<rect class=\"bar bar-{status}\" x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{h}\" fill=\"{color}\" \
                         data-day=\"{full_date}\" data-status=\"{status}\" data-channel=\"{}\" data-count=\"{n}\">\
                         <title>{full_date} · {} {status}: {n}</title></rect>",
                        esc(&channel),
                        esc(&channel)
                    );
                }
            }
        }
        if days <= 14 || i % 2 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#6b7280\">{date}</text>",
                x + bar / 2,
                HEIGHT - 6
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Totals per channel and status over the chart's days, for the legend.
pub fn totals(
    counts: &[DailyCount],
    today: i64,
    days: i64,
) -> BTreeMap<String, BTreeMap<String, i64>> {
    let mut out: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for c in counts
        .iter()
        .filter(|c| c.day > today - days && c.day <= today)
    {
        *out.entry(c.channel.clone())
            .or_default()
            .entry(c.status.clone())
            .or_default() += c.count;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_segment_per_channel_and_status_with_counts() {
        let counts = vec![
            DailyCount {
                day: 100,
                channel: "email".into(),
                status: "sent".into(),
                count: 3,
            },
            DailyCount {
                day: 100,
                channel: "sms".into(),
                status: "failed".into(),
                count: 1,
            },
            DailyCount {
                day: 90,
                channel: "email".into(),
                status: "sent".into(),
                count: 9,
            },
        ];
        let svg = sends_per_day(&counts, 100, 7, 720);
        assert!(
            svg.contains(">2</text>") && svg.contains(">4</text>"),
            "scale 0-2-4 for a max of 3"
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(
            svg.matches("<rect").count(),
            2,
            "day 90 is outside the 7 days"
        );
        assert!(svg.contains("data-channel=\"email\" data-count=\"3\""));
        assert!(svg.contains("data-status=\"failed\" data-channel=\"sms\" data-count=\"1\""));
        let t = totals(&counts, 100, 7);
        assert_eq!(t["email"]["sent"], 3);
        assert!(!t["email"].contains_key("failed"));
    }

    #[test]
    fn channel_names_are_escaped() {
        let counts = vec![DailyCount {
            day: 5,
            channel: "<script>".into(),
            status: "sent".into(),
            count: 1,
        }];
        let svg = sends_per_day(&counts, 5, 3, 720);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
    }
}
