//! The SVG toolkit of the report's charts (`render::report`) and the bench
//! plot (`render::plot`): a document, a plot area with linear and log
//! scales, grid lines with tick labels, axis titles, a legend, bars with
//! tooltips, lines, polylines and points. Everything is `maud` markup, so
//! every text and attribute is escaped by the template engine; a chart
//! module keeps only which chart it draws from which data.
//!
//! Coordinates print with the area's fixed count of decimals, so the same
//! data gives the same bytes.

use maud::{html, Markup, Render};
use std::fmt::Write;

/// A number printed with a fixed count of decimals.
#[derive(Debug, Clone, Copy)]
pub struct Num(pub f64, pub usize);

impl Render for Num {
    fn render_to(&self, buffer: &mut String) {
        let _ = write!(buffer, "{:.*}", self.1, self.0);
    }
}

/// The `<svg>` element: its size, and what a page or a file needs of it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Canvas<'a> {
    pub width: f64,
    pub height: f64,
    /// `id`, `class` and an accessible label (`role="img"`), for a chart
    /// inside a page.
    pub id: Option<&'a str>,
    pub class: Option<&'a str>,
    pub label: Option<&'a str>,
    /// The namespace, width, height and font attributes, for a standalone
    /// file.
    pub standalone: bool,
}

impl Canvas<'_> {
    /// The whole `<svg>` element around `body`.
    pub fn wrap(&self, body: Markup) -> Markup {
        let (w, h) = (self.width, self.height);
        let size = self.standalone.then_some((w, h));
        html! {
            svg xmlns=[self.standalone.then_some(SVG_NS)] id=[self.id] class=[self.class]
                width=[size.map(|s| s.0)] height=[size.map(|s| s.1)]
                viewBox={ "0 0 " (w) " " (h) } role=[self.label.map(|_| "img")]
                aria-label=[self.label] font-family=[self.standalone.then_some("sans-serif")]
                font-size=[self.standalone.then_some(12)] { (body) }
        }
    }
}

/// The namespace a standalone SVG file declares (a page's inline SVG
/// needs none, and its page names no URL).
const SVG_NS: &str = "http://www.w3.org/2000/svg";

/// How a line or shape is painted: a CSS class (for a page with a style
/// sheet) or presentation attributes (for a standalone file).
#[derive(Debug, Clone, Copy, Default)]
pub struct Paint<'a> {
    pub class: Option<&'a str>,
    pub stroke: Option<&'a str>,
    pub stroke_width: Option<&'a str>,
    pub dash: Option<&'a str>,
    pub fill: Option<&'a str>,
}

impl<'a> Paint<'a> {
    /// Painted by the page's style sheet.
    pub fn class(class: &'a str) -> Paint<'a> {
        Paint {
            class: Some(class),
            ..Paint::default()
        }
    }

    /// A stroke of this colour.
    pub fn stroke(color: &'a str) -> Paint<'a> {
        Paint {
            stroke: Some(color),
            ..Paint::default()
        }
    }
}

/// Where a text is anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn attr(self) -> Option<&'static str> {
        match self {
            Anchor::Start => None,
            Anchor::Middle => Some("middle"),
            Anchor::End => Some("end"),
        }
    }
}

/// The plot area of a chart, in user units, and the decimals coordinates
/// print with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
    pub decimals: usize,
}

impl Area {
    pub fn right(&self) -> f64 {
        self.left + self.width
    }

    pub fn bottom(&self) -> f64 {
        self.top + self.height
    }

    /// `v` as a coordinate.
    pub fn n(&self, v: f64) -> Num {
        Num(v, self.decimals)
    }

    /// The x of a fraction of the width (0 left, 1 right).
    pub fn x(&self, fraction: f64) -> f64 {
        self.left + fraction * self.width
    }

    /// The y of a fraction of the height (0 bottom, 1 top).
    pub fn y(&self, fraction: f64) -> f64 {
        self.top + self.height * (1.0 - fraction)
    }

    /// A line from `a` to `b`.
    pub fn line(&self, paint: Paint, a: (f64, f64), b: (f64, f64)) -> Markup {
        html! {
            line class=[paint.class] x1=(self.n(a.0)) y1=(self.n(a.1)) x2=(self.n(b.0))
                y2=(self.n(b.1)) stroke=[paint.stroke] stroke-width=[paint.stroke_width]
                stroke-dasharray=[paint.dash] fill=[paint.fill] {}
        }
    }

    /// A text at `at`.
    pub fn text(
        &self,
        class: Option<&str>,
        at: (f64, f64),
        anchor: Anchor,
        body: impl Render,
    ) -> Markup {
        html! {
            text class=[class] x=(self.n(at.0)) y=(self.n(at.1)) text-anchor=[anchor.attr()] { (body) }
        }
    }

    /// A text at `at` turned by `degrees` around it.
    pub fn turned_text(
        &self,
        class: Option<&str>,
        at: (f64, f64),
        degrees: i32,
        anchor: Anchor,
        body: impl Render,
    ) -> Markup {
        let transform =
            html! { "translate(" (self.n(at.0)) "," (self.n(at.1)) ") rotate(" (degrees) ")" };
        html! { text class=[class] transform=(transform) text-anchor=[anchor.attr()] { (body) } }
    }

    /// A rectangle at `at` of `size`, with a tooltip when `tip` is given.
    pub fn rect(
        &self,
        paint: Paint,
        at: (f64, f64),
        size: (f64, f64),
        tip: Option<&str>,
    ) -> Markup {
        html! {
            rect class=[paint.class] x=(self.n(at.0)) y=(self.n(at.1)) width=(self.n(size.0))
                height=(self.n(size.1)) fill=[paint.fill] stroke=[paint.stroke] {
                @if let Some(tip) = tip { title { (tip) } }
            }
        }
    }

    /// A point marker.
    pub fn circle(&self, fill: &str, at: (f64, f64), r: f64) -> Markup {
        html! { circle cx=(self.n(at.0)) cy=(self.n(at.1)) r=(r) fill=(fill) {} }
    }

    /// A line through `points`.
    pub fn polyline(&self, paint: Paint, points: &[(f64, f64)]) -> Markup {
        let mut coords = String::new();
        for (i, &(x, y)) in points.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let _ = write!(
                coords,
                "{sep}{:.*},{:.*}",
                self.decimals, x, self.decimals, y
            );
        }
        html! {
            polyline fill="none" stroke=[paint.stroke] stroke-width=[paint.stroke_width]
                stroke-dasharray=[paint.dash] points=(coords) {}
        }
    }

    /// Horizontal grid lines at the `y` of each tick, reaching `outside`
    /// left of the area, with the tick's label left of the area.
    pub fn y_grid(&self, paint: Paint, outside: f64, ticks: &[(f64, Markup)]) -> Markup {
        html! {
            @for (y, label) in ticks {
                (self.line(paint, (self.left - outside, *y), (self.right(), *y)))
                (self.text(None, (self.left - 8.0, y + 4.0), Anchor::End, label))
            }
        }
    }

    /// Vertical grid lines at the `x` of each tick, reaching `outside`
    /// below the area, with the tick's label under the area.
    pub fn x_grid(&self, paint: Paint, outside: f64, ticks: &[(f64, Markup)]) -> Markup {
        html! {
            @for (x, label) in ticks {
                (self.line(paint, (*x, self.top), (*x, self.bottom() + outside)))
                (self.text(None, (*x, self.bottom() + 20.0), Anchor::Middle, label))
            }
        }
    }

    /// The x axis title centred under the area at `x_at` (a y), the y axis
    /// title turned up, centred beside the area at `y_at` (an x).
    pub fn axis_titles(
        &self,
        class: Option<&str>,
        (x_title, x_at): (&str, f64),
        (y_title, y_at): (&str, f64),
    ) -> Markup {
        let mid = self.top + self.height / 2.0;
        html! {
            (self.turned_text(class, (y_at, mid), -90, Anchor::Middle, y_title))
            (self.text(class, (self.x(0.5), x_at), Anchor::Middle, x_title))
        }
    }

    /// A legend: entries in a row from `at` (the baseline of their text,
    /// each as wide as its label), or in a column `step` apart.
    pub fn legend(&self, at: (f64, f64), flow: Flow, entries: &[(Swatch, &str)]) -> Markup {
        let (mut x, mut y) = at;
        let mut out = String::new();
        for (swatch, label) in entries {
            let (swatch_markup, text_dx) = self.swatch(*swatch, (x, y - 4.0));
            html! {
                g class="legend" {
                    (swatch_markup)
                    (self.text(Some("legend"), (x + text_dx, y), Anchor::Start, *label))
                }
            }
            .render_to(&mut out);
            match flow {
                Flow::Row => x += text_dx + label.chars().count() as f64 * 6.3 + 22.0,
                Flow::Column(step) => y += step,
            }
        }
        maud::PreEscaped(out)
    }

    /// A legend swatch whose middle is at `mid`, and where its text starts.
    fn swatch(&self, swatch: Swatch, (x, mid): (f64, f64)) -> (Markup, f64) {
        match swatch {
            Swatch::Fill(class) => {
                let class = format!("swatch {class}");
                let m = self.rect(Paint::class(&class), (x, mid - 5.0), (14.0, 10.0), None);
                (m, 24.0)
            }
            Swatch::Series { color, dashed } => {
                let paint = Paint {
                    stroke_width: Some("2"),
                    dash: dashed.then_some(DASH),
                    ..Paint::stroke(color)
                };
                let m = html! {
                    (self.line(paint, (x, mid), (x + 28.0, mid)))
                    (self.circle(color, (x + 14.0, mid), 3.5))
                };
                (m, 36.0)
            }
        }
    }
}

/// The dash pattern of dashed lines.
pub const DASH: &str = "6 4";

/// How legend entries follow each other.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flow {
    Row,
    Column(f64),
}

/// What a legend entry shows before its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swatch<'a> {
    /// A filled square of a class.
    Fill(&'a str),
    /// A line with a point marker, in a colour.
    Series { color: &'a str, dashed: bool },
}

/// A linear scale from 0 to `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    pub max: f64,
}

impl Linear {
    /// From 0 to `max` (to 1 when `max` is not positive).
    pub fn to(max: f64) -> Linear {
        Linear {
            max: if max > 0.0 { max } else { 1.0 },
        }
    }

    /// Where `v` falls, from 0 to 1, clamped.
    pub fn fraction(self, v: f64) -> f64 {
        (v / self.max).clamp(0.0, 1.0)
    }

    /// The multiples of `step` from 0 to the top.
    pub fn ticks(self, step: f64) -> impl Iterator<Item = f64> {
        (0..=(self.max / step).round() as usize).map(move |i| i as f64 * step)
    }
}

/// A round step for about five ticks up to `max` (at least 1).
pub fn nice_step(max: f64) -> f64 {
    let raw = (max / 5.0).max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A log scale: the decades `10^lo ..= 10^hi` covering the values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decades {
    pub lo: i32,
    pub hi: i32,
}

impl Decades {
    /// The smallest range of whole decades holding every value (at least
    /// one decade; `1..10` when there is none).
    pub fn covering(values: impl Iterator<Item = f64>) -> Decades {
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
    pub fn fraction(self, v: f64) -> f64 {
        (v.log10() - f64::from(self.lo)) / f64::from(self.hi - self.lo)
    }

    /// The fractions of the decade ticks, each with its label.
    pub fn major(self) -> impl Iterator<Item = (f64, Markup)> {
        (self.lo..=self.hi).map(move |k| (self.fraction(10f64.powi(k)), decade_label(k)))
    }

    /// The fractions of the minor ticks (2·10^k ..= 9·10^k inside the range).
    pub fn minor(self) -> impl Iterator<Item = f64> {
        (self.lo..self.hi)
            .flat_map(move |k| (2..10).map(move |m| self.fraction(10f64.powi(k) * f64::from(m))))
    }
}

/// `10^k` as text: plain for 0.001 ..= 100,000, else a power of ten.
fn decade_label(k: i32) -> Markup {
    match k {
        -3..=-1 => html! { (10f64.powi(k)) },
        0..=5 => html! { (10i64.pow(k as u32)) },
        _ => html! { "10" tspan dy="-6" font-size="9" { (k) } },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AREA: Area = Area {
        left: 10.0,
        top: 20.0,
        width: 100.0,
        height: 50.0,
        decimals: 1,
    };

    #[test]
    fn text_and_attributes_are_escaped() {
        let nasty = "<b>&\"x'";
        let text = AREA
            .text(Some("c"), (1.0, 2.0), Anchor::Middle, nasty)
            .into_string();
        assert_eq!(
            text,
            "<text class=\"c\" x=\"1.0\" y=\"2.0\" text-anchor=\"middle\">&lt;b&gt;&amp;&quot;x'</text>"
        );
        let bar = AREA.rect(Paint::class("bar"), (0.0, 0.0), (1.0, 1.0), Some(nasty));
        assert!(bar
            .into_string()
            .contains("<title>&lt;b&gt;&amp;&quot;x'</title>"));
        let svg = Canvas {
            width: 10.0,
            height: 5.0,
            label: Some(nasty),
            ..Canvas::default()
        }
        .wrap(html! {});
        assert!(svg
            .into_string()
            .contains("aria-label=\"&lt;b&gt;&amp;&quot;x'\""));
    }

    #[test]
    fn the_area_maps_fractions_bottom_up() {
        assert_eq!((AREA.right(), AREA.bottom()), (110.0, 70.0));
        assert_eq!((AREA.x(0.5), AREA.y(0.0), AREA.y(1.0)), (60.0, 70.0, 20.0));
        let line = AREA.line(Paint::stroke("#ccc"), (1.0, 2.25), (3.0, 4.0));
        assert_eq!(
            line.into_string(),
            "<line x1=\"1.0\" y1=\"2.2\" x2=\"3.0\" y2=\"4.0\" stroke=\"#ccc\"></line>"
        );
    }

    #[test]
    fn linear_ticks_and_nice_steps() {
        assert_eq!(nice_step(23.0), 5.0);
        assert_eq!(nice_step(3.0), 1.0);
        assert_eq!(nice_step(700.0), 200.0);
        assert_eq!(nice_step(120.0), 50.0);
        let s = Linear::to(20.0);
        assert_eq!(
            s.ticks(5.0).collect::<Vec<_>>(),
            [0.0, 5.0, 10.0, 15.0, 20.0]
        );
        assert_eq!(
            (s.fraction(10.0), s.fraction(-1.0), s.fraction(99.0)),
            (0.5, 0.0, 1.0)
        );
        assert_eq!(Linear::to(0.0).max, 1.0);
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
        assert_eq!(d.major().count(), 4);
        assert_eq!(d.minor().count(), 3 * 8);
        let labels: Vec<String> = Decades { lo: -1, hi: 6 }
            .major()
            .map(|(_, m)| m.into_string())
            .collect();
        assert_eq!(labels[..3], ["0.1", "1", "10"]);
        assert_eq!(labels[7], "10<tspan dy=\"-6\" font-size=\"9\">6</tspan>");
    }

    #[test]
    fn legends_flow_in_a_row_or_a_column() {
        let entries = [(Swatch::Fill("a"), "ab"), (Swatch::Fill("b"), "c")];
        let row = AREA.legend((0.0, 16.0), Flow::Row, &entries).into_string();
        assert!(row.contains("class=\"swatch a\"") && row.contains("class=\"swatch b\""));
        // The second label starts after the first: 24 + 2 × 6.3 + 22 + 24.
        assert!(row.contains("x=\"82.6\" y=\"16.0\">c</text>"), "{row}");
        let series = Swatch::Series {
            color: "#000",
            dashed: true,
        };
        let col = AREA.legend(
            (0.0, 10.0),
            Flow::Column(22.0),
            &[(series, "s"), (series, "t")],
        );
        let col = col.into_string();
        assert_eq!(col.matches("stroke-dasharray=\"6 4\"").count(), 2);
        assert!(col.contains("y=\"32.0\">t</text>"), "{col}");
    }
}
