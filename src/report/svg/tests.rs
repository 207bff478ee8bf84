//! The SVGs parse as XML and hold what they claim: counted by walking them with roxmltree.
//! plotters draws a whisker as one `<polyline>` of 6 points and stroke width 1, a mean line
//! as a `<polyline>` of stroke width 2, a point as a `<circle>`, a legend swatch as a
//! `<rect>` and every label as a `<text>`.

use crate::metrics::registry::k;
use roxmltree::{Document, Node};

use super::super::plot::{Level, MetricPlot, Point, SeriesPoints, SweepPlot};
use super::*;
use crate::search::{Outcome, ProbeSummary, Status};
use crate::stats::Verdict;

const BLUE: &str = "#1F77B4";
const ORANGE: &str = "#FF7F0E";

fn p(mean: f64, half: Option<f64>) -> Option<Point> {
    Some(Point {
        mean,
        ci: half.map(|h| (mean - h, mean + h)),
        n: if half.is_some() { 5 } else { 1 },
    })
}

fn levels(values: &[f64]) -> Vec<Level> {
    values
        .iter()
        .map(|v| Level {
            label: v.to_string(),
            value: Some(*v),
        })
        .collect()
}

/// TTFT over rates 1…16 for two prompt sizes; the second misses rate 2 and has a single
/// repetition (no CI) at rate 16.
fn sweep(names: [&str; 2], levels: Vec<Level>) -> SweepPlot {
    let series = |name: &str, points: Vec<Option<Point>>| SeriesPoints {
        name: name.into(),
        points,
    };
    let ttft = MetricPlot {
        slo: None,
        metric: k("ttft.mean"),
        title: "TTFT mean".into(),
        primary: true,
        series: vec![
            series(
                names[0],
                (1..=5)
                    .map(|i| p(0.01 * f64::from(i), Some(0.002)))
                    .collect(),
            ),
            series(
                names[1],
                vec![
                    p(0.02, Some(0.001)),
                    None,
                    p(0.03, Some(0.001)),
                    p(0.04, Some(0.001)),
                    p(0.05, None),
                ],
            ),
        ],
    };
    SweepPlot {
        x_title: "request_rate".into(),
        levels,
        load: true,
        named: true,
        metrics: vec![ttft],
    }
}

/// Parses `text`, checks the `<svg>` root's size attributes, and returns the document.
fn parse(text: &str) -> Document<'_> {
    let doc = Document::parse(text).unwrap_or_else(|e| panic!("not XML: {e}\n{text}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    for a in ["width", "height", "viewBox"] {
        assert!(root.attribute(a).is_some(), "<svg> lacks {a}");
    }
    doc
}

fn elements<'a>(doc: &'a Document<'a>, tag: &'a str) -> impl Iterator<Item = Node<'a, 'a>> {
    doc.descendants().filter(move |n| n.has_tag_name(tag))
}

/// `(points, stroke width)` of the polylines in `colour`.
fn polylines(doc: &Document<'_>, colour: &str) -> Vec<(usize, String)> {
    elements(doc, "polyline")
        .filter(|n| n.attribute("stroke") == Some(colour))
        .map(|n| {
            let points = n.attribute("points").unwrap().split_whitespace().count();
            (points, n.attribute("stroke-width").unwrap().to_string())
        })
        .collect()
}

fn whiskers(doc: &Document<'_>, colour: &str) -> usize {
    polylines(doc, colour)
        .iter()
        .filter(|(n, w)| *n == 6 && w == "1")
        .count()
}

fn lines(doc: &Document<'_>, colour: &str) -> Vec<usize> {
    polylines(doc, colour)
        .into_iter()
        .filter(|(_, w)| w == "2")
        .map(|(n, _)| n)
        .collect()
}

fn count(doc: &Document<'_>, tag: &str, fill: &str) -> usize {
    elements(doc, tag)
        .filter(|n| n.attribute("fill") == Some(fill))
        .count()
}

/// Every `<text>` with its x position.
fn texts(doc: &Document<'_>) -> Vec<(String, f64)> {
    elements(doc, "text")
        .map(|n| {
            let x = n.attribute("x").unwrap().parse().unwrap();
            (n.text().unwrap_or("").trim().to_string(), x)
        })
        .collect()
}

fn has_text(doc: &Document<'_>, want: &str) -> usize {
    texts(doc).iter().filter(|(t, _)| t == want).count()
}

#[test]
fn every_series_gets_its_line_whiskers_points_and_one_legend_entry() {
    let plot = sweep(
        ["prompt_tokens=64", "prompt_tokens=512"],
        levels(&[1.0, 2.0, 4.0, 8.0, 16.0]),
    );
    let text = sweep::metric(&plot, &plot.metrics[0]).unwrap();
    let doc = parse(&text);
    // Series 1: five points, five CIs, one unbroken line.
    assert_eq!(whiskers(&doc, BLUE), 5);
    assert_eq!(lines(&doc, BLUE), [5]);
    assert_eq!(count(&doc, "circle", BLUE), 5);
    // Series 2: four points, three CIs (n = 1 at rate 16), the line broken at the gap: the
    // lone point at rate 1 has no segment, rates 4–16 one of 3 points.
    assert_eq!(whiskers(&doc, ORANGE), 3);
    assert_eq!(lines(&doc, ORANGE), [3]);
    assert_eq!(count(&doc, "circle", ORANGE), 4);
    // One legend entry each: a swatch and the name.
    assert_eq!(count(&doc, "rect", BLUE), 1);
    assert_eq!(count(&doc, "rect", ORANGE), 1);
    assert_eq!(has_text(&doc, "prompt_tokens=64"), 1);
    assert_eq!(has_text(&doc, "prompt_tokens=512"), 1);
    assert_eq!(has_text(&doc, "TTFT mean (ms)"), 1, "unit as in Mermaid");
    assert_eq!(has_text(&doc, "bars: 95 % CI of the mean"), 1);
    assert_eq!(has_text(&doc, "n = 1 to 5 repetitions per point"), 1);
}

#[test]
fn rates_spanning_16x_get_a_log_axis_with_evenly_spaced_doublings() {
    let plot = sweep(["a", "b"], levels(&[1.0, 2.0, 4.0, 8.0, 16.0]));
    let text = sweep::metric(&plot, &plot.metrics[0]).unwrap();
    let doc = parse(&text);
    assert_eq!(has_text(&doc, "request_rate (log scale)"), 1);
    let all = texts(&doc);
    let x: Vec<f64> = ["1", "2", "4", "8", "16"]
        .iter()
        .map(|l| all.iter().find(|(t, _)| t == l).unwrap().1)
        .collect();
    let gaps: Vec<f64> = x.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] > 50.0, "{x:?}");
    assert!(
        gaps.iter().all(|g| (g - gaps[0]).abs() <= 1.0),
        "doublings are evenly spaced on a log axis: {x:?}"
    );

    let linear = sweep(["a", "b"], levels(&[10.0, 20.0, 30.0, 40.0, 50.0]));
    let text = sweep::metric(&linear, &linear.metrics[0]).unwrap();
    let doc = parse(&text);
    assert_eq!(has_text(&doc, "request_rate"), 1);
    assert_eq!(has_text(&doc, "request_rate (log scale)"), 0);
}

#[test]
fn text_levels_get_a_categorical_axis_labelled_with_the_levels() {
    let cats: Vec<Level> = ["vllm", "sglang", "trt", "tgi", "llama.cpp"]
        .iter()
        .map(|l| Level {
            label: l.to_string(),
            value: None,
        })
        .collect();
    let mut plot = sweep(["a", "b"], cats);
    plot.x_title = "engine".into();
    let text = sweep::metric(&plot, &plot.metrics[0]).unwrap();
    let doc = parse(&text);
    for l in ["vllm", "sglang", "trt", "tgi", "llama.cpp", "engine"] {
        assert_eq!(has_text(&doc, l), 1, "{l}");
    }
    assert_eq!(whiskers(&doc, BLUE), 5);
}

#[test]
fn labels_with_markup_characters_stay_valid_xml_and_read_back_unchanged() {
    let evil = "engine=a&b <c> \"d\" 'e'";
    let mut plot = sweep([evil, "ctl\u{1}char"], levels(&[1.0, 2.0, 4.0, 8.0, 16.0]));
    plot.x_title = "x&<y>".into();
    plot.metrics[0].title = "TTFT \"mean\" & <more>".into();
    let text = sweep::metric(&plot, &plot.metrics[0]).unwrap();
    assert!(text.contains("a&amp;b &lt;c&gt;"), "{text}");
    let doc = parse(&text);
    assert_eq!(has_text(&doc, evil), 1);
    assert_eq!(
        has_text(&doc, "ctlchar"),
        1,
        "control characters are dropped"
    );
    assert_eq!(has_text(&doc, "x&<y> (log scale)"), 1);
    assert_eq!(has_text(&doc, "TTFT \"mean\" & <more> by x&<y>"), 1);
    let frontier = {
        let mut tp = plot.metrics[0].clone();
        tp.metric = k("output_throughput");
        sweep::frontier(&plot, &tp, &plot.metrics[0]).unwrap()
    };
    assert_eq!(has_text(&parse(&frontier), evil), 1);
}

#[test]
fn the_frontier_joins_points_in_load_order_with_both_whiskers_and_load_labels() {
    // Levels listed out of order: 4, 1, 2. Throughput = 100 × rate, latency = rate ms.
    let lv = levels(&[4.0, 1.0, 2.0]);
    let metric = |name: &str, scale: f64| MetricPlot {
        slo: None,
        metric: name.into(),
        title: name.into(),
        primary: true,
        series: vec![SeriesPoints {
            name: "default".into(),
            points: [4.0, 1.0, 2.0]
                .iter()
                .map(|r| p(r * scale, Some(0.05 * r * scale)))
                .collect(),
        }],
    };
    let plot = SweepPlot {
        x_title: "request_rate".into(),
        levels: lv,
        load: true,
        named: false,
        metrics: vec![],
    };
    let (tp, lat) = (
        metric("output_throughput", 100.0),
        metric("ttft.p99", 0.001),
    );
    let text = sweep::frontier(&plot, &tp, &lat).unwrap();
    let doc = parse(&text);
    let line = elements(&doc, "polyline")
        .find(|n| n.attribute("stroke") == Some(BLUE) && n.attribute("stroke-width") == Some("2"))
        .unwrap();
    let xs: Vec<i32> = line
        .attribute("points")
        .unwrap()
        .split_whitespace()
        .map(|xy| xy.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(xs.len(), 3);
    assert!(
        xs[0] < xs[1] && xs[1] < xs[2],
        "joined in load order: {xs:?}"
    );
    // Three vertical and three horizontal whiskers, a label per point in the series' colour.
    assert_eq!(whiskers(&doc, BLUE), 6);
    for load in ["1", "2", "4"] {
        let labelled = elements(&doc, "text")
            .filter(|n| n.attribute("fill") == Some(BLUE))
            .filter(|n| n.text().map(str::trim) == Some(load))
            .count();
        assert_eq!(labelled, 1, "{load}");
    }
    assert_eq!(
        has_text(&doc, "mean"),
        1,
        "a single unnamed series is `mean`"
    );
    assert_eq!(has_text(&doc, "output_throughput (tok/s)"), 1);
    assert_eq!(has_text(&doc, "ttft.p99 (ms)"), 1);
}

fn outcome() -> Outcome {
    let probe = |load: f64, mean: f64, half: f64| ProbeSummary {
        load,
        n: 3,
        mean,
        ci: Some((mean - half, mean + half)),
        passed: mean >= 0.99,
    };
    Outcome {
        cell: "default".into(),
        variable: "request_rate".into(),
        target: 0.99,
        tolerance: 0.05,
        status: Status::Converged,
        capacity: Some(13.21),
        first_failing: Some(13.6),
        non_monotone: vec![],
        probes: vec![
            probe(5.0, 1.0, 0.0),
            probe(30.0, 0.08, 0.02),
            probe(13.21, 0.995, 0.004),
            probe(13.6, 0.97, 0.03),
        ],
    }
}

#[test]
fn the_attainment_chart_shades_the_ci_band_and_marks_target_and_capacity() {
    let text = search::attainment(&outcome()).unwrap();
    let doc = parse(&text);
    let band: Vec<Node> = elements(&doc, "polygon").collect();
    assert_eq!(band.len(), 1, "one CI band");
    let corners = band[0]
        .attribute("points")
        .unwrap()
        .split_whitespace()
        .count();
    assert_eq!(corners, 8, "upper and lower end of each of 4 probes");
    assert_eq!(lines(&doc, BLUE), [4], "the mean line through 4 probes");
    assert_eq!(count(&doc, "circle", BLUE), 4);
    let red = "#D62728";
    assert!(
        polylines(&doc, red).len() >= 5,
        "the target line is dashed (many short segments)"
    );
    assert_eq!(lines(&doc, "#2CA02C"), [2], "a vertical capacity marker");
    assert_eq!(
        has_text(&doc, "capacity 13.21 req/s"),
        2,
        "marker label and legend"
    );
    assert_eq!(has_text(&doc, "target 99.0 %"), 1);
    assert_eq!(has_text(&doc, "95 % CI of the mean"), 1);
}

#[test]
fn slugs_are_safe_file_names_and_names_never_collide() {
    assert_eq!(slug("ttft.p99"), "ttft_p99");
    assert_eq!(slug("engine=a&b · tp=2"), "engine_a_b_tp_2");
    assert_eq!(slug("../../etc/passwd"), "etc_passwd");
    assert_eq!(slug("Ünïcode"), "n_code");
    assert_eq!(slug("·"), "chart");
    assert_eq!(slug(&"x".repeat(100)).len(), 60);
    let mut names = Names::default();
    assert_eq!(names.take("a.b"), "a_b.svg");
    assert_eq!(names.take("a_b"), "a_b_2.svg");
    assert_eq!(names.take("a b"), "a_b_3.svg");
}

#[test]
fn the_forest_has_a_row_per_comparison_and_no_whisker_for_an_unbounded_ci() {
    let row = |label: &str, change: f64, ci: Option<(f64, f64)>, verdict| ForestRow {
        label: label.into(),
        change,
        ci,
        tau: 0.03,
        verdict,
    };
    let rows = [
        row(
            "rate=2 · ttft.mean",
            0.1,
            Some((0.08, 0.12)),
            Verdict::Regression,
        ),
        row(
            "rate=2 · goodput",
            0.05,
            Some((0.04, 0.06)),
            Verdict::Improvement,
        ),
        row("a&b · <x>", 0.0, None, Verdict::Invalid),
    ];
    let text = forest("exp compare: demo & co", &rows).unwrap().unwrap();
    let doc = parse(&text);
    assert_eq!(elements(&doc, "circle").count(), 3);
    let red = "#D62728";
    let green = "#2CA02C";
    assert_eq!(count(&doc, "circle", red), 1);
    assert_eq!(count(&doc, "circle", green), 1);
    let bars = |c: &str| polylines(&doc, c).iter().filter(|(n, _)| *n == 6).count();
    assert_eq!((bars(red), bars(green), bars(BLUE)), (1, 1, 0));
    assert_eq!(has_text(&doc, "a&b · <x>"), 1);
    assert!(forest("empty", &[]).unwrap().is_none());
}
