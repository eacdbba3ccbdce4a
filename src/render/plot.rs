//! A log-log line chart as a standalone SVG document (`bench --plot`): one
//! polyline with point markers per series, decade ticks and grid lines on
//! both axes, a legend on the right. Our own code, no JavaScript; the same
//! input gives the same bytes (coordinates are printed to 0.1 px).
//!
//! Also the fitted scaling exponent of a series: the least-squares slope of
//! `ln y` against `ln x`, so `y ≈ c·x^k`.

use std::fmt::Write;

/// Canvas and plot-area geometry, in px.
const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 500.0;
const LEFT: f64 = 80.0;
const TOP: f64 = 46.0;
const PLOT_W: f64 = 500.0;
const PLOT_H: f64 = 384.0;
/// Where the legend starts (right of the plot area).
const LEGEND_X: f64 = LEFT + PLOT_W + 24.0;

/// Series colours (colour-blind safe first), by `Series::color`.
const PALETTE: [&str; 8] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#999999",
];

/// One line of the chart: points `(x, y)`, both > 0 (others are dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Index into the palette (wraps around).
    pub color: usize,
    /// Drawn dashed (to tell a second family apart in the same colour).
    pub dashed: bool,
}

/// A chart: title, axis labels and the series.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

/// The least-squares slope of `ln y` against `ln x` over the points with
/// both coordinates positive: the `k` of `y ≈ c·x^k`. `None` with fewer
/// than two distinct `x`.
pub fn fit_exponent(points: &[(f64, f64)]) -> Option<f64> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0 && x.is_finite() && y.is_finite())
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    let n = logs.len() as f64;
    if logs.len() < 2 {
        return None;
    }
    let mean_x = logs.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = logs.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = logs.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = logs.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (sxx > 1e-12).then(|| sxy / sxx)
}

/// A log axis: the decades `10^lo ..= 10^hi` covering the values.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Decades {
    lo: i32,
    hi: i32,
}

impl Decades {
    /// The smallest range of whole decades holding every value (at least
    /// one decade; `1..10` when there is none).
    fn covering(values: impl Iterator<Item = f64>) -> Decades {
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values {
            min = min.min(v);
            max = max.max(v);
        }
        if !min.is_finite() || !max.is_finite() {
            return Decades { lo: 0, hi: 1 };
        }
        // A hair of slack so an exact power of ten is its own decade.
        let lo = (min.log10() + 1e-9).floor() as i32;
        let hi = ((max.log10() - 1e-9).ceil() as i32).max(lo + 1);
        Decades { lo, hi }
    }

    /// Where `v` falls, from 0 (10^lo) to 1 (10^hi).
    fn fraction(self, v: f64) -> f64 {
        (v.log10() - f64::from(self.lo)) / f64::from(self.hi - self.lo)
    }
}

/// `10^k` as SVG text: plain for 0.001 ..= 100,000, else a power of ten.
fn decade_label(k: i32) -> String {
    match k {
        -3..=-1 => format!("{}", 10f64.powi(k)),
        0..=5 => format!("{}", 10i64.pow(k as u32)),
        _ => format!("10<tspan dy=\"-6\" font-size=\"9\">{k}</tspan>"),
    }
}

/// Text safe inside an SVG element or attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The chart as an SVG document.
pub fn svg(chart: &Chart) -> String {
    let positive = |s: &Series| -> Vec<(f64, f64)> {
        s.points
            .iter()
            .copied()
            .filter(|&(x, y)| x > 0.0 && y > 0.0 && x.is_finite() && y.is_finite())
            .collect()
    };
    let points: Vec<Vec<(f64, f64)>> = chart.series.iter().map(positive).collect();
    let xs = Decades::covering(points.iter().flatten().map(|p| p.0));
    let ys = Decades::covering(points.iter().flatten().map(|p| p.1));
    let px = |x: f64| LEFT + xs.fraction(x) * PLOT_W;
    let py = |y: f64| TOP + PLOT_H - ys.fraction(y) * PLOT_H;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        out,
        "<rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>\n\
         <text x=\"{:.1}\" y=\"26\" text-anchor=\"middle\" font-size=\"15\">{}</text>",
        LEFT + PLOT_W / 2.0,
        escape(&chart.title)
    );
    axes(&mut out, xs, ys, chart);
    for (i, (series, pts)) in chart.series.iter().zip(&points).enumerate() {
        let color = PALETTE[series.color % PALETTE.len()];
        let dash = if series.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let coords: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            out,
            "<g class=\"series\" id=\"series-{i}\">\n<title>{}</title>\n\
             <polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            escape(&series.label),
            coords.join(" ")
        );
        for &(x, y) in pts {
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"/>",
                px(x),
                py(y)
            );
        }
        out.push_str("</g>\n");
        legend_entry(&mut out, i, series, color, dash);
    }
    out.push_str("</svg>\n");
    out
}

/// Frame, decade ticks and grid, minor grid, tick labels, axis labels.
fn axes(out: &mut String, xs: Decades, ys: Decades, chart: &Chart) {
    let (right, bottom) = (LEFT + PLOT_W, TOP + PLOT_H);
    let minor = |d: Decades, k: i32, m: f64| d.fraction(10f64.powi(k) * m);
    for k in xs.lo..=xs.hi {
        let x = LEFT + xs.fraction(10f64.powi(k)) * PLOT_W;
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{TOP:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ccc\"/>\n\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 5.0,
            bottom + 20.0,
            decade_label(k)
        );
        for m in (2..10).filter(|_| k < xs.hi) {
            let x = LEFT + minor(xs, k, f64::from(m)) * PLOT_W;
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{TOP:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#eee\"/>"
            );
        }
    }
    for k in ys.lo..=ys.hi {
        let y = TOP + PLOT_H - ys.fraction(10f64.powi(k)) * PLOT_H;
        let _ = writeln!(
            out,
            "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{right:.1}\" y2=\"{y:.1}\" stroke=\"#ccc\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 5.0,
            LEFT - 8.0,
            y + 4.0,
            decade_label(k)
        );
        for m in (2..10).filter(|_| k < ys.hi) {
            let y = TOP + PLOT_H - minor(ys, k, f64::from(m)) * PLOT_H;
            let _ = writeln!(
                out,
                "<line x1=\"{LEFT:.1}\" y1=\"{y:.1}\" x2=\"{right:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>"
            );
        }
    }
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT:.1}\" y=\"{TOP:.1}\" width=\"{PLOT_W:.1}\" height=\"{PLOT_H:.1}\" \
         fill=\"none\" stroke=\"#333\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n\
         <text x=\"18\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {:.1})\">{}</text>",
        LEFT + PLOT_W / 2.0,
        bottom + 40.0,
        escape(&chart.x_label),
        TOP + PLOT_H / 2.0,
        TOP + PLOT_H / 2.0,
        escape(&chart.y_label)
    );
}

/// The legend line of series `i`: a line sample, a marker and the label.
fn legend_entry(out: &mut String, i: usize, series: &Series, color: &str, dash: &str) {
    let y = TOP + 8.0 + 22.0 * i as f64;
    let _ = writeln!(
        out,
        "<g class=\"legend\">\n\
         <line x1=\"{LEGEND_X:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\n\
         <circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{color}\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n</g>",
        LEGEND_X + 28.0,
        LEGEND_X + 14.0,
        LEGEND_X + 36.0,
        y + 4.0,
        escape(&series.label)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponent_of_a_power_law() {
        let quadratic: Vec<(f64, f64)> = [10.0, 100.0, 1000.0]
            .iter()
            .map(|&x: &f64| (x, 3.0 * x * x))
            .collect();
        let k = fit_exponent(&quadratic).unwrap();
        assert!((k - 2.0).abs() < 1e-12, "{k}");

        // Not on a line: in ln space (0, 0), (1, 1), (2, 3), whose
        // least-squares slope is Sxy / Sxx = 3 / 2.
        let e = std::f64::consts::E;
        let pts = [(1.0, 1.0), (e, e), (e * e, e * e * e)];
        let k = fit_exponent(&pts).unwrap();
        assert!((k - 1.5).abs() < 1e-12, "{k}");
    }

    #[test]
    fn exponent_needs_two_distinct_sizes() {
        assert_eq!(fit_exponent(&[]), None);
        assert_eq!(fit_exponent(&[(10.0, 5.0)]), None);
        assert_eq!(fit_exponent(&[(10.0, 5.0), (10.0, 7.0)]), None);
        // Non-positive points are ignored.
        assert_eq!(
            fit_exponent(&[(10.0, 5.0), (0.0, 7.0), (100.0, -1.0)]),
            None
        );
    }

    #[test]
    fn decades_cover_the_values() {
        let d = Decades::covering([1_000.0, 40_000.0, 400_000.0].into_iter());
        assert_eq!(d, Decades { lo: 3, hi: 6 });
        assert_eq!(
            Decades::covering([5.0].into_iter()),
            Decades { lo: 0, hi: 1 }
        );
        assert_eq!(
            Decades::covering(std::iter::empty()),
            Decades { lo: 0, hi: 1 }
        );
        assert!((d.fraction(1e3)).abs() < 1e-12 && (d.fraction(1e6) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn one_polyline_per_series_and_deterministic() {
        let chart = Chart {
            title: "t <&>".into(),
            x_label: "pairs".into(),
            y_label: "ms".into(),
            series: vec![
                Series {
                    label: "flow (uniform) k = 1.00".into(),
                    points: vec![(1e3, 2.0), (1e4, 20.0)],
                    color: 0,
                    dashed: false,
                },
                Series {
                    label: "microlp \"x\"".into(),
                    points: vec![(1e3, 50.0)],
                    color: 1,
                    dashed: true,
                },
            ],
        };
        let a = svg(&chart);
        assert_eq!(a, svg(&chart));
        assert_eq!(a.matches("<polyline").count(), 2, "{a}");
        assert!(a.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(a.contains("t &lt;&amp;&gt;") && a.contains("microlp &quot;x&quot;"));
        assert!(!a.contains("<script"));
        // Decade ticks 1000 and 10000 on x, 1, 10, 100 on y.
        for label in [">1000<", ">10000<", ">1<", ">10<", ">100<"] {
            assert!(a.contains(label), "{label}: {a}");
        }
    }
}
