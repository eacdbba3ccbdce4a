//! A log-log line chart as a standalone SVG document (`bench --plot`): one
//! polyline with point markers per series, decade ticks and grid lines on
//! both axes, a legend on the right. Our own code, no JavaScript; the same
//! input gives the same bytes (coordinates are printed to 0.1 px).
//!
//! Also the fitted scaling exponent of a series: the least-squares slope of
//! `ln y` against `ln x`, so `y ≈ c·x^k`.

use super::svg::{self, Area, Canvas, Decades, Flow, Paint, Swatch};
use maud::{html, Markup};

/// Canvas and plot-area geometry, in px; coordinates print to 0.1 px.
const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 500.0;
const TOP: f64 = 46.0;
const AREA: Area = Area {
    left: 80.0,
    top: TOP,
    width: 500.0,
    height: 384.0,
    decimals: 1,
};
/// Where the legend starts (right of the plot area).
const LEGEND_X: f64 = 80.0 + 500.0 + 24.0;

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

/// The chart as an SVG document.
pub fn svg(chart: &Chart) -> String {
    let points: Vec<Vec<(f64, f64)>> = chart.series.iter().map(positive).collect();
    let xs = Decades::covering(points.iter().flatten().map(|p| p.0));
    let ys = Decades::covering(points.iter().flatten().map(|p| p.1));
    let at = |(x, y): (f64, f64)| (AREA.x(xs.fraction(x)), AREA.y(ys.fraction(y)));
    let legend: Vec<(Swatch, &str)> = chart
        .series
        .iter()
        .map(|s| {
            (
                Swatch::Series {
                    color: color(s),
                    dashed: s.dashed,
                },
                s.label.as_str(),
            )
        })
        .collect();
    let body = html! {
        rect width=(WIDTH) height=(HEIGHT) fill="white" {}
        text x=(AREA.n(AREA.x(0.5))) y="26" text-anchor="middle" font-size="15" { (chart.title) }
        (axes(xs, ys, chart))
        @for (i, (series, pts)) in chart.series.iter().zip(&points).enumerate() {
            @let paint = Paint {
                stroke_width: Some("2"),
                dash: series.dashed.then_some(svg::DASH),
                ..Paint::stroke(color(series))
            };
            @let pts: Vec<(f64, f64)> = pts.iter().map(|&p| at(p)).collect();
            g class="series" id={ "series-" (i) } {
                title { (series.label) }
                (AREA.polyline(paint, &pts))
                @for &p in &pts { (AREA.circle(color(series), p, 3.5)) }
            }
        }
        (AREA.legend((LEGEND_X, TOP + 12.0), Flow::Column(22.0), &legend))
    };
    let canvas = Canvas {
        width: WIDTH,
        height: HEIGHT,
        standalone: true,
        ..Canvas::default()
    };
    canvas.wrap(body).into_string() + "\n"
}

/// The points of a series that a log-log chart can show.
fn positive(s: &Series) -> Vec<(f64, f64)> {
    s.points
        .iter()
        .copied()
        .filter(|&(x, y)| x > 0.0 && y > 0.0 && x.is_finite() && y.is_finite())
        .collect()
}

fn color(s: &Series) -> &'static str {
    PALETTE[s.color % PALETTE.len()]
}

/// Decade ticks and grid, minor grid, the frame, axis labels.
fn axes(xs: Decades, ys: Decades, chart: &Chart) -> Markup {
    let (major, minor) = (Paint::stroke("#ccc"), Paint::stroke("#eee"));
    let x_ticks: Vec<(f64, Markup)> = xs.major().map(|(f, l)| (AREA.x(f), l)).collect();
    let y_ticks: Vec<(f64, Markup)> = ys.major().map(|(f, l)| (AREA.y(f), l)).collect();
    let frame = Paint {
        fill: Some("none"),
        ..Paint::stroke("#333")
    };
    html! {
        (AREA.x_grid(major, 5.0, &x_ticks))
        @for f in xs.minor() {
            (AREA.line(minor, (AREA.x(f), AREA.top), (AREA.x(f), AREA.bottom())))
        }
        (AREA.y_grid(major, 5.0, &y_ticks))
        @for f in ys.minor() {
            (AREA.line(minor, (AREA.left, AREA.y(f)), (AREA.right(), AREA.y(f))))
        }
        (AREA.rect(frame, (AREA.left, AREA.top), (AREA.width, AREA.height), None))
        (AREA.axis_titles(None, (&chart.x_label, AREA.bottom() + 40.0), (&chart.y_label, 18.0)))
    }
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
        assert!(
            a.contains("font-size=\"15\">t &lt;&amp;&gt;</text>"),
            "the title: {a}"
        );
        assert!(a.contains("microlp &quot;x&quot;"));
        assert!(!a.contains("<script"));
        // Decade ticks 1000 and 10000 on x, 1, 10, 100 on y.
        for label in [">1000<", ">10000<", ">1<", ">10<", ">100<"] {
            assert!(a.contains(label), "{label}: {a}");
        }
    }
}
