//! A sweep's parameters: `--param name=v1,v2` parsed, checked against the literal values the
//! strategy file declares in its `params = { ... }` table (names and types), and written into
//! a copy of the file in place of those literals, so the file sees them from its first line
//! (indicators made when the file loads, `local p = M.params`), as if the user had edited it.

use std::ops::Range;

/// One `--param name=v1,v2,...` as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamAxis {
    pub name: String,
    pub values: Vec<String>,
}

impl std::str::FromStr for ParamAxis {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, values) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected name=value,value,… (like lookback=10,20)"))?;
        let name = name.trim();
        if !is_name(name) {
            return Err(format!("`{s}`: `{name}` is not a Lua field name"));
        }
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_owned()).collect();
        if values.iter().any(String::is_empty) {
            return Err(format!("`{s}`: an empty value"));
        }
        Ok(ParamAxis {
            name: name.to_owned(),
            values,
        })
    }
}

/// Problems with a sweep's parameters, found before anything runs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamError {
    #[error(
        "{file}: no `params = {{ ... }}` table to override (a sweep replaces the values declared there)"
    )]
    NoTable { file: String },
    #[error("{file}: unknown param `{name}` (its params table declares {known})")]
    Unknown {
        file: String,
        name: String,
        known: String,
    },
    #[error(
        "{file}: param `{name}` is declared as `{declared}`, not a literal value a sweep can replace"
    )]
    NotLiteral {
        file: String,
        name: String,
        declared: String,
    },
    #[error("param `{name}`: `{value}` is not {kind} like its declared value `{declared}`")]
    WrongType {
        name: String,
        value: String,
        kind: &'static str,
        declared: String,
    },
    #[error("param `{name}` is given twice")]
    Twice { name: String },
}

/// The type of a declared literal, which every value swept for it must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Float,
    Str,
    Boolean,
    /// An expression: not replaceable.
    Other,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Integer => "an integer",
            Kind::Float => "a number",
            Kind::Str => "a string",
            Kind::Boolean => "true or false",
            Kind::Other => "a literal",
        }
    }
}

/// One field of the declared `params` table.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    /// Where its value is in the source, and its text there.
    value: Range<usize>,
    text: String,
    kind: Kind,
}

/// A value for one param, checked: its text as a Lua literal and as a report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub lua: String,
    pub shown: String,
}

/// The params a strategy file declares.
#[derive(Debug)]
pub struct Declared {
    file: String,
    fields: Vec<Field>,
}

impl Declared {
    /// Finds the `params = { ... }` table of `source` (the first one; `M.params = { ... }`
    /// counts).
    ///
    /// # Errors
    /// When there is none.
    pub fn of(file: &str, source: &str) -> Result<Self, ParamError> {
        let tokens = lex(source);
        let at = tokens
            .windows(3)
            .position(|w| {
                w[0].text(source) == "params"
                    && w[1].text(source) == "="
                    && w[2].text(source) == "{"
            })
            .ok_or_else(|| ParamError::NoTable { file: file.into() })?;
        let mut fields = Vec::new();
        let mut i = at + 3;
        let mut depth = 0usize;
        // At depth 0 inside the table: `name = value-tokens` up to `,`, `;` or the closing `}`.
        let mut field: Option<(String, usize)> = None;
        while i < tokens.len() {
            let t = tokens[i].text(source);
            let closes = t == "}" && depth == 0;
            let ends = depth == 0 && (t == "," || t == ";") || closes;
            match t {
                "{" | "(" | "[" => depth += 1,
                "}" | ")" | "]" => depth = depth.saturating_sub(1),
                _ => {}
            }
            if ends {
                if let Some((name, from)) = field.take() {
                    fields.push(classify(source, name, &tokens[from..i]));
                }
                if closes {
                    break;
                }
            } else if depth == 0
                && field.is_none()
                && tokens[i].kind == Tok::Name
                && tokens.get(i + 1).is_some_and(|n| n.text(source) == "=")
            {
                field = Some((t.to_owned(), i + 2));
                i += 1;
            }
            i += 1;
        }
        Ok(Declared {
            file: file.into(),
            fields,
        })
    }

    /// Checks `axes` against the declaration: every name declared, as a literal, every value
    /// of its type. Returns the values of each axis as Lua literals.
    ///
    /// # Errors
    /// The first problem.
    pub fn check(&self, axes: &[ParamAxis]) -> Result<Vec<Vec<Value>>, ParamError> {
        let mut out = Vec::new();
        for (n, axis) in axes.iter().enumerate() {
            if axes[..n].iter().any(|a| a.name == axis.name) {
                return Err(ParamError::Twice {
                    name: axis.name.clone(),
                });
            }
            let field = self.field(&axis.name)?;
            out.push(
                axis.values
                    .iter()
                    .map(|v| value(field, v, &self.declared_text(field)))
                    .collect::<Result<_, _>>()?,
            );
        }
        Ok(out)
    }

    fn field(&self, name: &str) -> Result<&Field, ParamError> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| {
                let mut known: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
                known.sort_unstable();
                ParamError::Unknown {
                    file: self.file.clone(),
                    name: name.into(),
                    known: if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    },
                }
            })
            .and_then(|f| {
                if f.kind == Kind::Other {
                    Err(ParamError::NotLiteral {
                        file: self.file.clone(),
                        name: name.into(),
                        declared: self.declared_text(f),
                    })
                } else {
                    Ok(f)
                }
            })
    }

    fn declared_text(&self, f: &Field) -> String {
        f.text.clone()
    }

    /// `source` with the declared literals of `values` (by name) replaced.
    pub fn rewrite(&self, source: &str, values: &[(&str, &Value)]) -> String {
        let mut spans: Vec<(Range<usize>, &str)> = values
            .iter()
            .filter_map(|(name, v)| {
                let f = self.fields.iter().find(|f| f.name == *name)?;
                Some((f.value.clone(), v.lua.as_str()))
            })
            .collect();
        spans.sort_by_key(|(r, _)| r.start);
        let mut out = String::with_capacity(source.len() + 64);
        let mut at = 0;
        for (r, text) in spans {
            out.push_str(&source[at..r.start]);
            out.push_str(text);
            at = r.end;
        }
        out.push_str(&source[at..]);
        out
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The kind of a field's value tokens.
fn classify(source: &str, name: String, value: &[Token]) -> Field {
    let span = match (value.first(), value.last()) {
        (Some(a), Some(b)) => a.span.start..b.span.end,
        _ => 0..0,
    };
    let texts: Vec<&str> = value.iter().map(|t| t.text(source)).collect();
    let kind = match (value, texts.as_slice()) {
        ([t], _) if t.kind == Tok::Number => number_kind(t.text(source)),
        ([_, t], ["-", _]) if t.kind == Tok::Number => number_kind(t.text(source)),
        ([t], _) if t.kind == Tok::Str => Kind::Str,
        (_, ["true"] | ["false"]) => Kind::Boolean,
        _ => Kind::Other,
    };
    Field {
        name,
        text: source[span.clone()].to_owned(),
        value: span,
        kind,
    }
}

fn number_kind(text: &str) -> Kind {
    let hex = text.starts_with("0x") || text.starts_with("0X");
    let float = if hex {
        text.contains(['.', 'p', 'P'])
    } else {
        text.contains(['.', 'e', 'E'])
    };
    if float { Kind::Float } else { Kind::Integer }
}

/// A swept value checked against its field's kind, as a Lua literal.
fn value(field: &Field, given: &str, declared: &str) -> Result<Value, ParamError> {
    let wrong = || ParamError::WrongType {
        name: field.name.clone(),
        value: given.into(),
        kind: field.kind.describe(),
        declared: declared.into(),
    };
    match field.kind {
        Kind::Integer => {
            let n: i64 = given.parse().map_err(|_| wrong())?;
            Ok(Value {
                lua: n.to_string(),
                shown: n.to_string(),
            })
        }
        Kind::Float => {
            let x: f64 = given.parse().map_err(|_| wrong())?;
            if !x.is_finite() {
                return Err(wrong());
            }
            // `{:?}` always has a point or an exponent: Lua reads a float back.
            Ok(Value {
                lua: format!("{x:?}"),
                shown: x.to_string(),
            })
        }
        Kind::Boolean => match given {
            "true" | "false" => Ok(Value {
                lua: given.into(),
                shown: given.into(),
            }),
            _ => Err(wrong()),
        },
        Kind::Str => {
            let mut lua = String::from("\"");
            for b in given.bytes() {
                match b {
                    b'"' | b'\\' => {
                        lua.push('\\');
                        lua.push(b as char);
                    }
                    0x20..=0x7e => lua.push(b as char),
                    _ => lua.push_str(&format!("\\{b:03}")),
                }
            }
            lua.push('"');
            Ok(Value {
                lua,
                shown: given.into(),
            })
        }
        Kind::Other => Err(wrong()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Name,
    Number,
    Str,
    Punct,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    span: Range<usize>,
}

impl Token {
    fn text<'a>(&self, source: &'a str) -> &'a str {
        &source[self.span.clone()]
    }
}

/// The level of a long bracket opening at `at` (`[[` is 0, `[==[` is 2), if one does.
fn long_bracket(b: &[u8], at: usize) -> Option<usize> {
    if b.get(at) != Some(&b'[') {
        return None;
    }
    let level = b[at + 1..].iter().take_while(|&&c| c == b'=').count();
    (b.get(at + 1 + level) == Some(&b'[')).then_some(level)
}

/// The end of a long bracket of `level` whose content starts at `from` (past its `]=*]`).
fn long_end(b: &[u8], from: usize, level: usize) -> usize {
    let mut i = from;
    while i < b.len() {
        if b[i] == b']'
            && b[i + 1..].iter().take_while(|&&c| c == b'=').count() >= level
            && b.get(i + 1 + level) == Some(&b']')
        {
            return i + 2 + level;
        }
        i += 1;
    }
    b.len()
}

/// Lua's tokens, comments dropped: enough to find a table's fields and their literal values.
fn lex(source: &str) -> Vec<Token> {
    let b = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            i = match long_bracket(b, i + 2) {
                Some(level) => long_end(b, i + 4 + level, level),
                None => b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p),
            };
            continue;
        }
        let kind = if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            Tok::Name
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let hex = c == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X'));
            if hex {
                i += 2;
            }
            while i < b.len() {
                let d = b[i];
                let exp = if hex {
                    matches!(d, b'p' | b'P')
                } else {
                    matches!(d, b'e' | b'E')
                };
                if exp && matches!(b.get(i + 1), Some(b'+' | b'-')) {
                    i += 2;
                } else if d.is_ascii_alphanumeric() || d == b'.' {
                    i += 1;
                } else {
                    break;
                }
            }
            Tok::Number
        } else if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c && b[i] != b'\n' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            Tok::Str
        } else if let Some(level) = long_bracket(b, i) {
            i = long_end(b, i + 2 + level, level);
            Tok::Str
        } else {
            let two = source.get(i..i + 2).unwrap_or("");
            let three = source.get(i..i + 3).unwrap_or("");
            i += if three == "..." {
                3
            } else if matches!(
                two,
                "==" | "~=" | "<=" | ">=" | "//" | "::" | "<<" | ">>" | ".."
            ) {
                2
            } else {
                // One character, whole (UTF-8 outside strings is an error Lua reports).
                source[i..].chars().next().map_or(1, char::len_utf8)
            };
            Tok::Punct
        };
        out.push(Token {
            kind,
            span: start..i,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r#"
-- params = { fake = 1 } in a comment is not it
local M = {
  symbols = { "MNQ" },
  params = { lookback = 20, stop = 1.5, mode = "fast", on = true, list = { 1, 2 }, neg = -3,
             expr = 2 * 10 },
}
local n = ta.ema(M.params.lookback)
return M
"#;

    fn axis(s: &str) -> ParamAxis {
        s.parse().unwrap()
    }

    #[test]
    fn declared_literals_are_replaced_in_place_with_checked_values() {
        let d = Declared::of("s.lua", SRC).unwrap();
        let vals = d
            .check(&[
                axis("lookback=10,40"),
                axis("stop=2"),
                axis("mode=a\"b"),
                axis("on=false"),
                axis("neg=-7"),
            ])
            .unwrap();
        assert_eq!(vals[0][1].lua, "40");
        assert_eq!(vals[1][0].lua, "2.0");
        assert_eq!(vals[1][0].shown, "2");
        assert_eq!(vals[2][0].lua, r#""a\"b""#);
        let out = d.rewrite(
            SRC,
            &[
                ("lookback", &vals[0][1]),
                ("stop", &vals[1][0]),
                ("mode", &vals[2][0]),
                ("on", &vals[3][0]),
                ("neg", &vals[4][0]),
            ],
        );
        assert!(
            out.contains(r#"params = { lookback = 40, stop = 2.0, mode = "a\"b", on = false, list = { 1, 2 }, neg = -7,"#),
            "{out}"
        );
        assert!(out.contains("fake = 1"), "comments stay as they were");
        assert_eq!(out.lines().count(), SRC.lines().count());
    }

    #[test]
    fn unknown_names_wrong_types_and_expressions_are_errors() {
        let d = Declared::of("s.lua", SRC).unwrap();
        let err = d.check(&[axis("lookbak=1")]).unwrap_err().to_string();
        assert!(err.contains("unknown param `lookbak`"), "{err}");
        assert!(err.contains("lookback, mode, neg, on, stop"), "{err}");
        let err = d.check(&[axis("lookback=2.5")]).unwrap_err().to_string();
        assert!(err.contains("`2.5` is not an integer"), "{err}");
        assert!(d.check(&[axis("stop=x")]).is_err());
        assert!(d.check(&[axis("on=1")]).is_err());
        assert!(d.check(&[axis("stop=inf")]).is_err());
        let err = d.check(&[axis("expr=3")]).unwrap_err().to_string();
        assert!(err.contains("not a literal"), "{err}");
        assert!(matches!(
            d.check(&[axis("stop=1"), axis("stop=2")]),
            Err(ParamError::Twice { .. })
        ));
        assert!(matches!(
            Declared::of("t.lua", "return { symbols = {} }"),
            Err(ParamError::NoTable { .. })
        ));
    }

    #[test]
    fn axes_parse_from_the_command_line() {
        assert_eq!(
            axis("lookback = 10, 20"),
            ParamAxis {
                name: "lookback".into(),
                values: vec!["10".into(), "20".into()]
            }
        );
        assert!("lookback".parse::<ParamAxis>().is_err());
        assert!("lookback=".parse::<ParamAxis>().is_err());
        assert!("1x=2".parse::<ParamAxis>().is_err());
        assert!("a=1,,2".parse::<ParamAxis>().is_err());
    }
}
