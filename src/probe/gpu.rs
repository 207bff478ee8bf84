//! GPUs through `nvidia-smi` query mode, one reading per GPU per sample:
//! `nvidia-smi --query-gpu=index,memory.used,memory.total,utilization.gpu,power.draw,total_energy_consumption,clocks.sm --format=csv,noheader,nounits`.
//! Units without `nounits` would be MiB, %, W, mJ and MHz; readings are stored in SI units
//! (bytes, fraction, W, J, Hz). Fields a GPU does not support print as `[N/A]` or
//! `[Not Supported]` and are left out, never read as zero.

use std::collections::BTreeMap;
use std::time::Duration;

/// Every field exp asks for, in order.
pub const FIELDS: &[&str] = &[
    "index",
    "memory.used",
    "memory.total",
    "utilization.gpu",
    "power.draw",
    "total_energy_consumption",
    "clocks.sm",
];

/// The fields older drivers all know, tried when the full list is refused (nvidia-smi fails
/// the whole query on one unknown field).
pub const BASIC_FIELDS: &[&str] = &[
    "index",
    "memory.used",
    "memory.total",
    "utilization.gpu",
    "power.draw",
];

/// Longest a query may take.
const QUERY_LIMIT: Duration = Duration::from_secs(10);

/// One GPU at one instant, in SI units; fields it did not report are absent.
pub type GpuReading = (u32, BTreeMap<String, f64>);

/// Parses the CSV printed for `fields` (one line per GPU).
pub fn parse_csv(text: &str, fields: &[&str]) -> Result<Vec<GpuReading>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != fields.len() {
            return Err(format!(
                "nvidia-smi printed {} fields where {} were asked for: {line:?}",
                cells.len(),
                fields.len()
            ));
        }
        let mut index = None;
        let mut values = BTreeMap::new();
        for (field, cell) in fields.iter().zip(&cells) {
            let Ok(x) = cell.parse::<f64>() else {
                continue; // [N/A], [Not Supported], …: absent.
            };
            let (key, scale) = match *field {
                "index" => {
                    index = Some(x as u32);
                    continue;
                }
                "memory.used" => ("memory_used", 1024.0 * 1024.0),
                "memory.total" => ("memory_total", 1024.0 * 1024.0),
                "utilization.gpu" => ("utilization", 0.01),
                "power.draw" => ("power", 1.0),
                "total_energy_consumption" => ("energy", 1e-3),
                "clocks.sm" => ("sm_clock", 1e6),
                _ => continue,
            };
            values.insert(key.to_string(), x * scale);
        }
        let index = index.ok_or_else(|| format!("no GPU index in {line:?}"))?;
        out.push((index, values));
    }
    if out.is_empty() {
        return Err("nvidia-smi listed no GPU".into());
    }
    Ok(out)
}

/// Runs one query; `Err` says why it failed.
pub async fn query(fields: &[&str]) -> Result<Vec<GpuReading>, String> {
    let mut cmd = tokio::process::Command::new("nvidia-smi");
    cmd.arg(format!("--query-gpu={}", fields.join(",")))
        .arg("--format=csv,noheader,nounits")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(QUERY_LIMIT, cmd.output()).await {
        Err(_) => return Err(format!("nvidia-smi did not answer within {QUERY_LIMIT:?}")),
        Ok(Err(e)) => return Err(format!("cannot run nvidia-smi: {e}")),
        Ok(Ok(out)) => out,
    };
    if !out.status.success() {
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let said = stdout
            .lines()
            .chain(stderr.lines())
            .find(|l| !l.trim().is_empty());
        return Err(format!(
            "nvidia-smi failed ({}): {}",
            out.status,
            said.unwrap_or("").trim()
        ));
    }
    parse_csv(&String::from_utf8_lossy(&out.stdout), fields)
}

/// Finds which field list this machine's `nvidia-smi` accepts: all of [`FIELDS`], else
/// [`BASIC_FIELDS`]; `Err` with the reason when neither works (no GPU, no driver).
pub async fn detect() -> Result<&'static [&'static str], String> {
    match query(FIELDS).await {
        Ok(_) => Ok(FIELDS),
        Err(full) => match query(BASIC_FIELDS).await {
            Ok(_) => Ok(BASIC_FIELDS),
            Err(_) => Err(full),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded shape of an 8-GPU H100 box (two lines shown), with one field unsupported.
    const H100: &str = "0, 71234, 81559, 97, 612.45, 1234567890, 1980\n1, 70011, 81559, 88, [N/A], [Not Supported], 1755\n";

    #[test]
    fn readings_are_converted_to_si_units_and_unsupported_fields_are_absent() {
        let r = parse_csv(H100, FIELDS).unwrap();
        assert_eq!(r.len(), 2);
        let (i, v) = &r[0];
        assert_eq!(*i, 0);
        assert_eq!(v["memory_used"], 71234.0 * 1048576.0);
        assert_eq!(v["utilization"], 0.97);
        assert_eq!(v["power"], 612.45);
        assert!((v["energy"] - 1_234_567.89).abs() < 1e-6, "mJ → J");
        assert_eq!(v["sm_clock"], 1.98e9);
        let (i, v) = &r[1];
        assert_eq!(*i, 1);
        assert!(!v.contains_key("power") && !v.contains_key("energy"));
    }

    #[test]
    fn malformed_output_is_an_error() {
        assert!(parse_csv("0, 1, 2\n", FIELDS).is_err());
        assert!(parse_csv("", FIELDS).is_err());
        assert!(parse_csv("[N/A], 1, 2, 3, 4\n", BASIC_FIELDS).is_err());
    }
}
