//! The benchmark's table: one row per figure, with its target and whether it was met.

/// One figure.
pub struct Row {
    part: String,
    measurement: String,
    figure: String,
    target: String,
    met: Option<bool>,
}

impl Row {
    /// A figure with a target.
    pub fn judged(part: &str, measurement: &str, figure: String, target: &str, met: bool) -> Row {
        Row {
            part: part.into(),
            measurement: measurement.into(),
            figure,
            target: target.into(),
            met: Some(met),
        }
    }

    /// A figure given for context.
    pub fn info(part: &str, measurement: &str, figure: String) -> Row {
        Row {
            part: part.into(),
            measurement: measurement.into(),
            figure,
            target: String::new(),
            met: None,
        }
    }
}

/// Milliseconds with three decimals (`0.123 ms`), signed.
pub fn ms(seconds: f64) -> String {
    format!("{:.3} ms", seconds * 1e3)
}

/// The table as Markdown, parts in order, the part named once.
pub fn render(rows: &[Row]) -> String {
    let mut out =
        String::from("| part | measurement | figure | target | met |\n|:--|:--|--:|:--|:--|\n");
    let mut last = "";
    for r in rows {
        let part = if r.part == last { "" } else { r.part.as_str() };
        last = &r.part;
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        out.push_str(&format!(
            "| {part} | {} | {} | {} | {met} |\n",
            r.measurement, r.figure, r.target
        ));
    }
    out
}
