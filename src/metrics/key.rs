//! [`MetricKey`]: the name of one number of a repetition's summary (`ttft.p99`,
//! `output_throughput`), typed, and the registry's ordered lists of keys.

use std::fmt;

use super::registry::{Better, Kind, Metric, Spec, Stat, Unit};

impl Metric {
    /// The key of a per-repetition metric (`output_throughput`).
    ///
    /// # Panics
    /// For a [`Kind::Distribution`] metric, which needs a [`Stat`] ([`Metric::at`]); in a
    /// `const` this is a compile error.
    pub const fn key(self) -> MetricKey {
        assert!(
            !matches!(self.spec().kind, Kind::Distribution),
            "a per-request metric needs a statistic: use Metric::at"
        );
        MetricKey {
            metric: self,
            stat: None,
        }
    }

    /// The key of a statistic of a per-request metric (`ttft.p99`).
    ///
    /// # Panics
    /// For a metric that is not a [`Kind::Distribution`].
    pub const fn at(self, stat: Stat) -> MetricKey {
        assert!(
            matches!(self.spec().kind, Kind::Distribution),
            "only per-request metrics have statistics: use Metric::key"
        );
        MetricKey {
            metric: self,
            stat: Some(stat),
        }
    }
}

/// The name of one number of a repetition's summary: a per-repetition metric
/// (`output_throughput`) or a statistic of a per-request one (`ttft.p99`). Written and read
/// as that text; ordered as that text, so files list metrics as they always have.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricKey {
    metric: Metric,
    stat: Option<Stat>,
}

impl MetricKey {
    /// The metric.
    pub const fn metric(self) -> Metric {
        self.metric
    }

    /// The statistic, for a per-request metric.
    pub const fn stat(self) -> Option<Stat> {
        self.stat
    }

    /// The metric's declaration.
    pub const fn spec(self) -> Spec {
        self.metric.spec()
    }

    /// Unit of stored values.
    pub const fn unit(self) -> Unit {
        self.metric.spec().unit
    }

    /// Better direction.
    pub const fn better(self) -> Better {
        self.metric.spec().better
    }

    /// The direction the statistics test for an improvement.
    pub const fn direction(self) -> crate::stats::Direction {
        match self.better() {
            Better::Higher => crate::stats::Direction::HigherIsBetter,
            Better::Lower => crate::stats::Direction::LowerIsBetter,
        }
    }

    /// True for tail statistics (p90 and above, max), which get wider thresholds.
    pub fn is_tail(self) -> bool {
        self.stat.is_some_and(Stat::is_tail)
    }

    /// Default practical-significance threshold τ, on [`MetricKey::scale`]
    /// ([`Kind::default_threshold`]).
    pub fn default_threshold(self) -> f64 {
        (self.spec().kind).default_threshold(self.unit(), self.is_tail())
    }

    /// The scale its changes are measured on ([`Kind::scale`]).
    pub const fn scale(self) -> crate::stats::Scale {
        self.spec().kind.scale()
    }

    /// Parses `ttft.p99` or `output_throughput`; `None` for anything else ([`MetricKey::all`]
    /// lists the known names for hints).
    pub fn parse(name: &str) -> Option<MetricKey> {
        match name.split_once('.') {
            Some((base, stat)) => {
                let metric = Metric::parse(base)?;
                let stat = Stat::parse(stat)?;
                (metric.spec().kind == Kind::Distribution).then_some(MetricKey {
                    metric,
                    stat: Some(stat),
                })
            }
            None => {
                let metric = Metric::parse(name)?;
                (metric.spec().kind != Kind::Distribution)
                    .then_some(MetricKey { metric, stat: None })
            }
        }
    }

    /// Every key a summary can hold: per-repetition metrics first, then every statistic of
    /// every per-request metric.
    pub fn all() -> Vec<MetricKey> {
        let scalars = Metric::ALL
            .into_iter()
            .filter(|m| m.spec().kind != Kind::Distribution)
            .map(Metric::key);
        let stats = Metric::ALL
            .into_iter()
            .filter(|m| m.spec().kind == Kind::Distribution)
            .flat_map(|m| Stat::ALL.map(|s| m.at(s)));
        scalars.chain(stats).collect()
    }

    /// The text form, for hints and messages.
    pub fn all_names() -> Vec<String> {
        MetricKey::all().iter().map(MetricKey::to_string).collect()
    }
}

impl fmt::Display for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stat {
            Some(stat) => write!(f, "{}.{}", self.metric.name(), stat.name()),
            None => f.write_str(self.metric.name()),
        }
    }
}

impl fmt::Debug for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{self}`")
    }
}

impl Ord for MetricKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // The order of the text `name.stat`: a name that is a prefix of another sorts first
        // both ways ('.' is below every name character), so comparing the parts is enough.
        let parts = |k: &MetricKey| (k.metric.name(), k.stat.map(Stat::name));
        parts(self).cmp(&parts(other))
    }
}

impl PartialOrd for MetricKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl serde::Serialize for MetricKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MetricKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        MetricKey::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown metric `{text}`")))
    }
}

/// Default primary metrics of `[analysis]`.
pub const DEFAULT_PRIMARY: [MetricKey; 6] = [
    Metric::OutputThroughput.key(),
    Metric::Ttft.at(Stat::Mean),
    Metric::Ttft.at(Stat::P99),
    Metric::Tpot.at(Stat::Mean),
    Metric::Itl.at(Stat::P99),
    Metric::E2e.at(Stat::Mean),
];

/// Metrics the report shows in tables after the primary ones, when measured, in this order.
pub const REPORTED: [MetricKey; 32] = [
    Metric::RequestThroughput.key(),
    Metric::SamplesPerS.key(),
    Metric::StepTime.key(),
    Metric::OutputThroughput.key(),
    Metric::Goodput.key(),
    Metric::SloAttainment.key(),
    Metric::ErrorRate.key(),
    Metric::Ttft.at(Stat::Mean),
    Metric::Ttft.at(Stat::P99),
    Metric::Tpot.at(Stat::Mean),
    Metric::Itl.at(Stat::P99),
    Metric::E2e.at(Stat::Mean),
    Metric::E2e.at(Stat::P99),
    Metric::QueueDelay.at(Stat::P99),
    Metric::ClientCpuPerRequest.key(),
    Metric::ClientCpuUtil.key(),
    Metric::ClientCpuWait.key(),
    Metric::Concurrency.key(),
    Metric::Mfu.key(),
    Metric::Mbu.key(),
    Metric::GpuMemUtil.key(),
    Metric::SmUtil.key(),
    Metric::Power.key(),
    Metric::EnergyPerToken.key(),
    Metric::KvCacheUsage.key(),
    Metric::ServerCpu.key(),
    Metric::ClientCpu.key(),
    Metric::NetUtil.key(),
    Metric::CostPer1kTokens.key(),
    Metric::CostPer1kOutputTokens.key(),
    Metric::Ppl.key(),
    Metric::RetrievalAccuracy.key(),
];

/// A key by its text, for tests that read like the files they check.
///
/// # Panics
/// On a name that is not a summary metric.
#[cfg(test)]
pub(crate) fn k(name: &str) -> MetricKey {
    MetricKey::parse(name).unwrap_or_else(|| panic!("`{name}` is not a summary metric"))
}

/// Tests write keys as text (`"ttft.p99".into()`); production code names them by variant.
#[cfg(test)]
impl From<&str> for MetricKey {
    fn from(name: &str) -> MetricKey {
        k(name)
    }
}

#[cfg(test)]
impl PartialEq<&str> for MetricKey {
    fn eq(&self, other: &&str) -> bool {
        MetricKey::parse(other) == Some(*self)
    }
}
