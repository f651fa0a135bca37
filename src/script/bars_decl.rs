//! A strategy's `bars` and `bars_history` declarations: which timeframes of which of its
//! symbols it wants bars for, checked against `symbols` and the offered timeframes.

use mlua::{Table, Value};

use crate::bars::Timeframe;

/// Bars kept (and backfilled) per series unless `bars_history` says otherwise.
pub const DEFAULT_HISTORY: usize = 500;
/// The most `bars_history` may ask for (`History/retrieveBars` returns at most 20,000 bars).
pub const MAX_HISTORY: usize = 20_000;

/// `bars = { "1m", "5m" }` (for every symbol) and/or `bars = { MNQ = { "1m" } }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BarsDecl {
    /// Timeframes for every symbol of the strategy.
    pub all: Vec<Timeframe>,
    /// Timeframes for one symbol, by the name the strategy lists in `symbols`.
    pub per_symbol: Vec<(String, Vec<Timeframe>)>,
    /// Bars to keep per series (`bars_history`).
    pub history: usize,
}

impl BarsDecl {
    /// Whether `symbol` (one of `symbols`) has `tf` declared.
    pub fn declares(&self, symbol: &str, tf: Timeframe) -> bool {
        self.all.contains(&tf)
            || self
                .per_symbol
                .iter()
                .any(|(s, tfs)| s.eq_ignore_ascii_case(symbol) && tfs.contains(&tf))
    }

    /// Every declared (symbol, timeframe) pair, given the strategy's `symbols`.
    pub fn series(&self, symbols: &[String]) -> Vec<(String, Timeframe)> {
        let mut out: Vec<(String, Timeframe)> = symbols
            .iter()
            .flat_map(|s| self.all.iter().map(move |tf| (s.clone(), *tf)))
            .collect();
        for (s, tfs) in &self.per_symbol {
            out.extend(tfs.iter().map(|tf| (s.clone(), *tf)));
        }
        out.sort();
        out.dedup();
        out
    }
}

fn timeframes(key: &str, list: &Table) -> Result<Vec<Timeframe>, DeclError> {
    let mut out = Vec::new();
    for v in list.sequence_values::<Value>() {
        let v = v.map_err(|e| DeclError::at(key, e.to_string()))?;
        let Value::String(s) = v else {
            return Err(DeclError::at(
                key,
                format!(
                    "bars: a timeframe is a string like \"5m\", not a {}",
                    v.type_name()
                ),
            ));
        };
        let tf = Timeframe::parse(&s.to_string_lossy())
            .map_err(|e| DeclError::at(key, format!("bars: {e}")))?;
        if !out.contains(&tf) {
            out.push(tf);
        }
    }
    Ok(out)
}

/// Reads `bars` (its `history` is set from `bars_history` by the caller); symbols are checked against `symbols` by [`check_symbols`] once all keys are
/// read.
pub fn parse(v: Value) -> Result<BarsDecl, DeclError> {
    let Value::Table(t) = v else {
        return Err(DeclError::at(
            "bars",
            "bars must be a list of timeframes like { \"1m\", \"5m\" } or a table like { MNQ = { \"1m\" } }",
        ));
    };
    let mut decl = BarsDecl {
        all: timeframes("bars", &t)?,
        ..BarsDecl::default()
    };
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| DeclError::at("bars", e.to_string()))?;
        match (k, v) {
            (Value::Integer(_), _) => {}
            (Value::String(k), Value::Table(list)) => {
                let key = k.to_string_lossy();
                let tfs = timeframes(&key, &list)?;
                decl.per_symbol.push((key, tfs));
            }
            (Value::String(k), v) => {
                let key = k.to_string_lossy();
                return Err(DeclError::at(
                    &key,
                    format!(
                        "bars.{key} must be a list of timeframes like {{ \"1m\" }}, not a {}",
                        v.type_name()
                    ),
                ));
            }
            (k, _) => {
                return Err(DeclError::at(
                    "bars",
                    format!("bars: unexpected key of type {}", k.type_name()),
                ));
            }
        }
    }
    decl.per_symbol.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(decl)
}

/// Reads `bars_history`: a whole number of bars in `0..=`[`MAX_HISTORY`].
pub fn parse_history(v: &Value) -> Result<usize, DeclError> {
    let n = match *v {
        Value::Integer(n) => Some(n),
        Value::Number(f) if f.fract() == 0.0 && f.is_finite() => Some(f as i64),
        _ => None,
    };
    n.filter(|n| (0..=MAX_HISTORY as i64).contains(n))
        .map(|n| n as usize)
        .ok_or_else(|| {
            DeclError::at(
                "bars_history",
                format!("bars_history must be a whole number of bars from 0 to {MAX_HISTORY}"),
            )
        })
}

/// Every symbol named in `bars` must be one of `symbols`, and bars need symbols.
pub fn check_symbols(decl: &BarsDecl, symbols: &[String]) -> Result<(), DeclError> {
    if !decl.all.is_empty() && symbols.is_empty() {
        return Err(DeclError::at(
            "bars",
            "bars are declared but symbols is empty: list the symbols to build bars for",
        ));
    }
    for (s, _) in &decl.per_symbol {
        if !symbols.iter().any(|d| d.eq_ignore_ascii_case(s)) {
            return Err(DeclError::at(
                s,
                format!(
                    "bars: symbol '{s}' is not declared in symbols ({})",
                    symbols.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// A bad `bars` or `bars_history` declaration: the key it is under (which `moontick check`
/// turns into a line) and what is wrong.
#[derive(Debug)]
pub struct DeclError {
    pub key: String,
    pub message: String,
}

impl DeclError {
    fn at(key: &str, message: impl Into<String>) -> Self {
        DeclError {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}
