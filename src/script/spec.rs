//! What a strategy file declares (`symbols`, `trades`, `depth`, `quotes`, handlers) and the checks a
//! returned table must pass before it may replace the running version.

use mlua::{Table, Value};

pub const HANDLERS: &[&str] = &[
    "on_start",
    "on_quote",
    "on_trade",
    "on_depth",
    "on_order",
    "on_fill",
    "on_position",
    "on_webhook",
    "on_feed",
    "on_stop",
];

/// What a strategy subscribes to; read by the host to route events.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub symbols: Vec<String>,
    /// The strategy's own `limits`; the risk guard only lets them tighten the global ones.
    pub limits: crate::risk::StrategyLimits,
    pub trades: bool,
    pub depth: bool,
    /// `quotes = "latest"`: the strategy only wants the newest quote of each contract.
    pub quotes: QuoteMode,
}

/// Which quotes a strategy wants (`quotes = "all" | "latest"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QuoteMode {
    /// Every quote, in order (coalesced only when the strategy falls far behind).
    #[default]
    All,
    /// Only the newest waiting quote of each contract.
    Latest,
}

impl Spec {
    pub fn wants(&self, contract: &str, symbol: &str) -> bool {
        self.symbols.iter().any(|s| s == contract || s == symbol)
    }
}

/// The line of the last top-level `return`, where the strategy table is handed over: the best
/// place to point at for a problem with the table's contents.
pub fn return_line(source: &str) -> usize {
    source
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("return"))
        .map(|(i, _)| i + 1)
        .last()
        .unwrap_or(1)
}

pub fn validate(m: &Table) -> Result<Spec, String> {
    let mut spec = Spec::default();
    for pair in m.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let Value::String(k) = k else { continue };
        let key = k.to_string_lossy();
        if key.starts_with("on_") {
            if !HANDLERS.contains(&key.as_str()) {
                return Err(format!(
                    "unknown handler '{key}' (handlers: {})",
                    HANDLERS.join(", ")
                ));
            }
            if !v.is_function() {
                return Err(format!("{key} must be a function, not a {}", v.type_name()));
            }
            continue;
        }
        match key.as_str() {
            "symbols" => {
                let Value::Table(list) = v else {
                    return Err("symbols must be a list of strings, like { \"MNQ\" }".into());
                };
                for s in list.sequence_values::<Value>() {
                    match s.map_err(|e| e.to_string())? {
                        Value::String(s) if !s.as_bytes().is_empty() => {
                            spec.symbols.push(s.to_string_lossy())
                        }
                        _ => {
                            return Err(
                                "symbols must be a list of strings, like { \"MNQ\" }".into()
                            );
                        }
                    }
                }
            }
            "params" if !v.is_table() => return Err("params must be a table".into()),
            "limits" => {
                let Value::Table(t) = v else {
                    return Err("limits must be a table of numbers".into());
                };
                for pair in t.pairs::<Value, Value>() {
                    let (lk, lv) = pair.map_err(|e| e.to_string())?;
                    let name = lk.to_string().unwrap_or_default();
                    let n = match lv {
                        Value::Integer(i) if i > 0 => u32::try_from(i).unwrap_or(u32::MAX),
                        Value::Number(f) if f >= 1.0 && f.fract() == 0.0 => {
                            f.min(u32::MAX as f64) as u32
                        }
                        _ => return Err(format!("limits.{name} must be a positive integer")),
                    };
                    match name.as_str() {
                        "max_position" => spec.limits.max_position = Some(n),
                        "max_order_size" => spec.limits.max_order_size = Some(n),
                        _ => {
                            return Err(format!(
                                "unknown limit '{name}' (limits: max_position, max_order_size)"
                            ));
                        }
                    }
                }
            }
            "trades" | "depth" => {
                let Value::Boolean(b) = v else {
                    return Err(format!("{key} must be true or false"));
                };
                if key == "trades" {
                    spec.trades = b
                } else {
                    spec.depth = b
                }
            }
            "quotes" => {
                spec.quotes = match v.as_string().map(|s| s.to_string_lossy()).as_deref() {
                    Some("all") => QuoteMode::All,
                    Some("latest") => QuoteMode::Latest,
                    _ => return Err("quotes must be \"all\" or \"latest\"".into()),
                }
            }
            _ => {}
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str) -> Result<Spec, String> {
        let lua = mlua::Lua::new();
        validate(&lua.load(src).eval::<Table>().unwrap())
    }

    #[test]
    fn validation_names_the_problem() {
        let ok = check(
            "return { symbols = { 'MNQ', 'CON.F.US.MES.Z25' }, trades = true, on_quote = print }",
        )
        .unwrap();
        assert_eq!(ok.symbols, ["MNQ", "CON.F.US.MES.Z25"]);
        assert!(ok.trades && !ok.depth && ok.wants("x", "MNQ") && !ok.wants("x", "ES"));
        assert_eq!(ok.quotes, QuoteMode::All);
        assert_eq!(
            check("return { quotes = 'latest' }").unwrap().quotes,
            QuoteMode::Latest
        );
        for (src, want) in [
            ("return { symbols = 'MNQ' }", "symbols must be a list"),
            ("return { symbols = { 1 } }", "symbols must be a list"),
            ("return { on_qoute = print }", "unknown handler 'on_qoute'"),
            ("return { on_quote = 1 }", "on_quote must be a function"),
            (
                "return { limits = { max_position = 'two' } }",
                "limits.max_position must be a positive integer",
            ),
            ("return { trades = 'yes' }", "trades must be true or false"),
            (
                "return { quotes = 'newest' }",
                "quotes must be \"all\" or \"latest\"",
            ),
            (
                "return { quotes = true }",
                "quotes must be \"all\" or \"latest\"",
            ),
        ] {
            let err = check(src).unwrap_err();
            assert!(err.contains(want), "{src}: {err}");
        }
    }

    #[test]
    fn return_line_points_at_the_last_top_level_return() {
        assert_eq!(
            return_line("local M = {}\nfunction M.f()\n  return 1\nend\nreturn M\n"),
            5
        );
        assert_eq!(return_line("x = 1"), 1);
    }
}
