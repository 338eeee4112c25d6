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

/// Counts by day, then bar (`sent`, `failed`, `queued`), then channel.
type Grid<'a> = BTreeMap<i64, BTreeMap<&'static str, BTreeMap<&'a str, i64>>>;

/// The bar a stored status is drawn in: accepted by the provider (whatever it reported
/// later, but a failure to deliver), failed to reach the person, still waiting. Test-mode
/// sends are never sent: not part of the traffic.
fn bar_of(status: &str) -> Option<&'static str> {
    match status {
        "sent" | "delivered" | "complained" => Some("sent"),
        "failed" | "undelivered" | "bounced" => Some("failed"),
        "test" => None,
        _ => Some("queued"),
    }
}

/// The counts of the days `first..=today`, by day, bar and channel.
fn tally(counts: &[DailyCount], first: i64, today: i64) -> Grid<'_> {
    let mut grid = Grid::new();
    for c in counts.iter().filter(|c| c.day >= first && c.day <= today) {
        let Some(bar) = bar_of(&c.status) else {
            continue;
        };
        *grid
            .entry(c.day)
            .or_default()
            .entry(bar)
            .or_default()
            .entry(c.channel.as_str())
            .or_default() += c.count;
    }
    grid
}

/// A round, even top of the scale (2, 4, 10, 20, 40, 100, …) at or above `max`, so the
/// middle line is whole.
fn scale_top(max: i64) -> i64 {
    let mut scale = 2;
    while scale < max {
        scale = if scale.to_string().starts_with('4') {
            scale * 5 / 2
        } else {
            scale * 2
        };
    }
    scale
}

/// Day `day` (days since the Unix epoch) in `format`; empty if chrono cannot represent it.
fn day_label(day: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

/// Where the bars go: the plot's height, the scale's top, each day's slot and bar width.
struct Layout {
    width: i64,
    plot_h: i64,
    scale: i64,
    slot: i64,
    bar: i64,
}

impl Layout {
    /// The horizontal lines at 0, half and the top of the scale, with their values.
    fn axis(&self, svg: &mut String) {
        for i in 0..=2 {
            let v = self.scale * i / 2;
            let y = TOP + self.plot_h - self.plot_h * i / 2;
            let _ = write!(
                svg,
                "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#e5e7eb\"/>\
                 <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#6b7280\">{v}</text>",
                self.width,
                LEFT - 6,
                y + 4
            );
        }
    }

    /// One day's stacked segments at `x`: bar by bar, the sign-in channels first in their
    /// fixed order, then any other channel.
    fn stack(
        &self,
        svg: &mut String,
        x: i64,
        full_date: &str,
        bars: &BTreeMap<&str, BTreeMap<&str, i64>>,
    ) {
        let (bar, mut y) = (self.bar, TOP + self.plot_h);
        for (status, color) in STATUSES {
            let Some(channels) = bars.get(status) else {
                continue;
            };
            let others = channels.keys().filter(|k| !CHANNELS.contains(*k)).copied();
            for channel in CHANNELS.into_iter().chain(others) {
                let n = channels.get(channel).copied().unwrap_or(0);
                if n == 0 {
                    continue;
                }
                let h = (n * self.plot_h / self.scale).max(1);
                y -= h;
                let channel = esc(channel);
                let _ = write!(
                    svg,
                    "<rect class=\"bar bar-{status}\" x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{h}\" fill=\"{color}\" \
                     data-day=\"{full_date}\" data-status=\"{status}\" data-channel=\"{channel}\" data-count=\"{n}\">\
                     <title>{full_date} · {channel} {status}: {n}</title></rect>"
                );
            }
        }
    }
}

/// SVG for the `days` days ending with `today` (days since the Unix epoch, UTC).
/// `width` is the viewBox width (the SVG scales to its container; wider for full-width cards).
pub fn sends_per_day(counts: &[DailyCount], today: i64, days: i64, width: i64) -> String {
    let width = width.max(200);
    let first = today - days + 1;
    let grid = tally(counts, first, today);
    let day_total = |d: i64| -> i64 {
        grid.get(&d)
            .map(|s| s.values().flat_map(|c| c.values()).sum())
            .unwrap_or(0)
    };
    let max = (first..=today).map(day_total).max().unwrap_or(0).max(1);
    let slot = (width - LEFT) / days.max(1);
    let layout = Layout {
        width,
        plot_h: HEIGHT - TOP - BOTTOM,
        scale: scale_top(max),
        slot,
        bar: (slot * 2 / 3).max(2),
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {width} {HEIGHT}\" role=\"img\" aria-label=\"Sends per day\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    layout.axis(&mut svg);
    for (i, day) in (first..=today).enumerate() {
        let i = i as i64;
        let x = LEFT + i * layout.slot + (layout.slot - layout.bar) / 2;
        if let Some(bars) = grid.get(&day) {
            layout.stack(&mut svg, x, &day_label(day, "%Y-%m-%d"), bars);
        }
        if days <= 14 || i % 2 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#6b7280\">{}</text>",
                x + layout.bar / 2,
                HEIGHT - 6,
                day_label(day, "%b %-d")
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
