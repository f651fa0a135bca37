//! What a strategy file declares (`symbols`, `trades`, `depth`, `quotes`, `bars`, handlers) and the checks a
//! returned table must pass before it may replace the running version.

use mlua::{Table, Value};

use super::bars_decl;
pub use super::bars_decl::BarsDecl;

pub const HANDLERS: &[&str] = &[
    "on_start",
    "on_quote",
    "on_trade",
    "on_depth",
    "on_bar",
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
    /// `bars` and `bars_history`.
    pub bars: BarsDecl,
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

    /// Whether the strategy declared bars of `tf` for this contract.
    pub fn wants_bar(&self, contract: &str, symbol: &str, tf: crate::bars::Timeframe) -> bool {
        self.symbols
            .iter()
            .any(|s| (s == contract || s == symbol) && self.bars.declares(s, tf))
    }
}

/// A strategy table that does not pass, with what is needed to point at the mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    /// The key of the strategy table the problem is under.
    pub key: Option<String>,
    /// Where a function value was defined, which is known exactly: the chunk name (`@path`)
    /// and the line.
    pub defined_at: Option<(String, usize)>,
}

impl Invalid {
    pub(super) fn at(key: &str, message: impl Into<String>) -> Self {
        Self::new(key, message)
    }

    fn new(key: &str, message: impl Into<String>) -> Self {
        Invalid {
            message: message.into(),
            key: Some(key.to_owned()),
            defined_at: None,
        }
    }

    /// The line to report in the strategy file `path`: where the function was defined (when
    /// that is in this file, not a module), else where the key is assigned in `source`, else
    /// the `return` that hands the table over.
    pub fn line(&self, source: &str, path: &std::path::Path) -> usize {
        let chunk = format!("@{}", path.display());
        self.defined_at
            .as_ref()
            .filter(|(c, _)| *c == chunk)
            .map(|(_, line)| *line)
            .or_else(|| self.key.as_deref().and_then(|k| assignment_line(source, k)))
            .unwrap_or_else(|| return_line(source))
    }
}

impl From<bars_decl::DeclError> for Invalid {
    fn from(e: bars_decl::DeclError) -> Self {
        Invalid::at(&e.key, e.message)
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The last line that assigns `key`: `x.key =`, `key =` in a table constructor, or
/// `["key"] =`. A plain text search, good enough to point a person at a line.
pub fn assignment_line(source: &str, key: &str) -> Option<usize> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = None;
    for (i, line) in source.lines().enumerate() {
        let code = line.split("--").next().unwrap_or("");
        let hit = code.match_indices(key).any(|(at, _)| {
            let before = code[..at].chars().next_back();
            let after = &code[at + key.len()..];
            let quoted = matches!(before, Some('"' | '\''));
            if before.is_some_and(ident) || after.starts_with(ident) {
                return false;
            }
            let after = if quoted {
                match after
                    .get(1..)
                    .and_then(|a| a.trim_start().strip_prefix(']'))
                {
                    Some(a) => a,
                    None => return false,
                }
            } else {
                after
            };
            let after = after.trim_start();
            after.starts_with('=') && !after.starts_with("==")
        });
        if hit {
            found = Some(i + 1);
        }
    }
    found
}

/// The handler closest to a misspelt one, when it is close enough to be the one meant.
fn closest_handler(name: &str) -> Option<&'static str> {
    HANDLERS
        .iter()
        .map(|h| (edit_distance(name, h), *h))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, h)| h)
}

/// Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
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

pub fn validate(m: &Table) -> Result<Spec, Invalid> {
    let mut spec = Spec::default();
    let mut history = None;
    let lua_err = |e: mlua::Error| Invalid {
        message: e.to_string(),
        key: None,
        defined_at: None,
    };
    for pair in m.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(lua_err)?;
        let Value::String(k) = k else { continue };
        let key = k.to_string_lossy();
        if key.starts_with("on_") {
            if !HANDLERS.contains(&key.as_str()) {
                let hint = match closest_handler(&key) {
                    Some(h) => format!("did you mean {h}?"),
                    None => format!("handlers: {}", HANDLERS.join(", ")),
                };
                let defined_at = match &v {
                    Value::Function(f) => {
                        let info = f.info();
                        info.source.zip(info.line_defined)
                    }
                    _ => None,
                };
                return Err(Invalid {
                    defined_at,
                    ..Invalid::new(&key, format!("unknown handler '{key}' ({hint})"))
                });
            }
            if !v.is_function() {
                return Err(Invalid::new(
                    &key,
                    format!("{key} must be a function, not a {}", v.type_name()),
                ));
            }
            continue;
        }
        match key.as_str() {
            "symbols" => {
                let bad = || {
                    Invalid::new(
                        "symbols",
                        "symbols must be a list of strings, like { \"MNQ\" }",
                    )
                };
                let Value::Table(list) = v else {
                    return Err(bad());
                };
                for s in list.sequence_values::<Value>() {
                    match s.map_err(lua_err)? {
                        Value::String(s) if !s.as_bytes().is_empty() => {
                            spec.symbols.push(s.to_string_lossy())
                        }
                        _ => return Err(bad()),
                    }
                }
            }
            "params" if !v.is_table() => {
                return Err(Invalid::new("params", "params must be a table"));
            }
            "limits" => {
                let Value::Table(t) = v else {
                    return Err(Invalid::new("limits", "limits must be a table of numbers"));
                };
                for pair in t.pairs::<Value, Value>() {
                    let (lk, lv) = pair.map_err(lua_err)?;
                    let name = lk.to_string().unwrap_or_default();
                    let n = match lv {
                        Value::Integer(i) if i > 0 => u32::try_from(i).unwrap_or(u32::MAX),
                        Value::Number(f) if f >= 1.0 && f.fract() == 0.0 => {
                            f.min(u32::MAX as f64) as u32
                        }
                        _ => {
                            return Err(Invalid::new(
                                &name,
                                format!("limits.{name} must be a positive integer"),
                            ));
                        }
                    };
                    match name.as_str() {
                        "max_position" => spec.limits.max_position = Some(n),
                        "max_order_size" => spec.limits.max_order_size = Some(n),
                        _ => {
                            return Err(Invalid::new(
                                &name,
                                format!(
                                    "unknown limit '{name}' (limits: max_position, max_order_size)"
                                ),
                            ));
                        }
                    }
                }
            }
            "trades" | "depth" => {
                let Value::Boolean(b) = v else {
                    return Err(Invalid::new(&key, format!("{key} must be true or false")));
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
                    _ => {
                        return Err(Invalid::new(
                            "quotes",
                            "quotes must be \"all\" or \"latest\"",
                        ));
                    }
                }
            }
            "bars" => spec.bars = bars_decl::parse(v)?,
            "bars_history" => history = Some(bars_decl::parse_history(&v)?),
            _ => {}
        }
    }
    spec.bars.history = history.unwrap_or(bars_decl::DEFAULT_HISTORY);
    bars_decl::check_symbols(&spec.bars, &spec.symbols)?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str) -> Result<Spec, String> {
        let lua = mlua::Lua::new();
        validate(&lua.load(src).eval::<Table>().unwrap()).map_err(|e| e.to_string())
    }

    /// `line: message`, as `moontick check` reports it.
    fn located(src: &str) -> String {
        let lua = mlua::Lua::new();
        let path = std::path::Path::new("s.lua");
        let chunk = lua.load(src).set_name(format!("@{}", path.display()));
        let e = validate(&chunk.eval::<Table>().unwrap()).unwrap_err();
        format!("{}: {e}", e.line(src, path))
    }

    #[test]
    fn problems_point_at_the_line_of_the_mistake() {
        let src = "local M = {}\n\nfunction M.on_qoute(q)\nend\nreturn M\n";
        assert_eq!(
            located(src),
            "3: unknown handler 'on_qoute' (did you mean on_quote?)"
        );
        let src = "local M = {}\nM.on_quote = 42\nreturn M\n";
        assert_eq!(
            located(src),
            "2: on_quote must be a function, not a integer"
        );
        let src =
            "return {\n  symbols = { 'MNQ' },\n  limits = {\n    max_position = 'two',\n  },\n}\n";
        assert!(
            located(src).starts_with("4: limits.max_position"),
            "{}",
            located(src)
        );
        let src = "local M = { [\"trades\"] = 1 }\nreturn M\n";
        assert!(located(src).starts_with("1: trades"), "{}", located(src));
        // Nothing to find: the return line.
        let src = "local k = 'on_' .. 'zzzzzz'\nlocal M = { [k] = 1 }\nreturn M\n";
        assert!(
            located(src).starts_with("3: unknown handler 'on_zzzzzz' (handlers: "),
            "{}",
            located(src)
        );
    }

    #[test]
    fn bars_are_declared_for_all_symbols_or_per_symbol() {
        let tf = |s| crate::bars::Timeframe::parse(s).unwrap();
        let s =
            check("return { symbols = { 'MNQ', 'ES' }, bars = { '1m', '5m', MNQ = { '15s' } } }")
                .unwrap();
        assert_eq!(s.bars.history, 500);
        assert_eq!(
            s.bars.series(&s.symbols),
            [
                ("ES".into(), tf("1m")),
                ("ES".into(), tf("5m")),
                ("MNQ".into(), tf("15s")),
                ("MNQ".into(), tf("1m")),
                ("MNQ".into(), tf("5m")),
            ]
        );
        assert!(s.wants_bar("CON.F.US.MNQ.Z25", "MNQ", tf("15s")));
        assert!(!s.wants_bar("CON.F.US.EP.Z25", "ES", tf("15s")));
        let s =
            check("return { symbols = { 'MNQ' }, bars = { MNQ = { '1d' } }, bars_history = 20 }")
                .unwrap();
        assert_eq!((s.bars.history, s.bars.series(&s.symbols).len()), (20, 1));
        assert_eq!(
            check("return { symbols = { 'MNQ' } }")
                .unwrap()
                .bars
                .series(&["MNQ".into()]),
            []
        );
    }

    #[test]
    fn an_unknown_timeframe_or_an_undeclared_symbol_points_at_its_line() {
        let src = "local M = {\n  symbols = { 'MNQ' },\n  bars = { '1m', '7m' },\n}\nreturn M\n";
        let e = located(src);
        assert!(
            e.starts_with("3: bars: unknown timeframe '7m' (timeframes: "),
            "{e}"
        );
        let src = "local M = {\n  symbols = { 'MNQ' },\n  bars = {\n    MNQ = { '1m' },\n    ES = { '5m' },\n  },\n}\nreturn M\n";
        assert_eq!(
            located(src),
            "5: bars: symbol 'ES' is not declared in symbols (MNQ)"
        );
        let src = "return {\n  symbols = { 'MNQ' },\n  bars = { MNQ = { '1w' } },\n}\n";
        assert!(
            located(src).starts_with("3: bars: unknown timeframe '1w'"),
            "{}",
            located(src)
        );
        for (src, want) in [
            (
                "return { symbols = { 'MNQ' }, bars = '1m' }",
                "bars must be a list of timeframes",
            ),
            (
                "return { symbols = { 'MNQ' }, bars = { 5 } }",
                "a timeframe is a string",
            ),
            (
                "return { symbols = { 'MNQ' }, bars = { MNQ = '1m' } }",
                "bars.MNQ must be a list",
            ),
            ("return { bars = { '1m' } }", "symbols is empty"),
            (
                "return { symbols = { 'MNQ' }, bars = { '1m' }, bars_history = -1 }",
                "bars_history must be",
            ),
            (
                "return { symbols = { 'MNQ' }, bars = { '1m' }, bars_history = 1.5 }",
                "bars_history must be",
            ),
        ] {
            let err = check(src).unwrap_err();
            assert!(err.contains(want), "{src}: {err}");
        }
    }

    #[test]
    fn assignment_line_ignores_comparisons_comments_and_longer_names() {
        let src = "if x.trades == 1 then end\n-- trades = 2\nlocal trades_n = 3\nM.trades = true\n";
        assert_eq!(assignment_line(src, "trades"), Some(4));
        assert_eq!(assignment_line("M.on_quote(1)", "on_quote"), None);
        assert_eq!(assignment_line("t['depth'] = 1", "depth"), Some(1));
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
