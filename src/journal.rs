//! The trade journal: every fill appended to `STATE_DIR/<gateway>-<account>/journal/YYYY-MM-DD.csv`
//! (one file per CME trading day), in the columns trade-journal tools import, and read back for
//! `GET /journal`.
//!
//! Written by the engine loop itself, one `write` of a whole line per fill on a file opened for
//! appending: nothing sits in a buffer or a queue, so a crash loses at most the line being
//! written. Fills are rare next to quotes; the write goes to the OS cache and costs microseconds.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::engine::events::FillRecord;
use crate::money::{Money, Price};

/// The journal's subdirectory of the account's state directory.
pub const DIR: &str = "journal";

/// The header row. The first six columns are Tradervue's generic import format (which also
/// takes `Commission` and `TransFee`; other journals map columns by name); the rest are
/// moontick's. Times are UTC.
pub const HEADER: &str = "Date,Time,Symbol,Quantity,Price,Side,Commission,TransFee,PnL,\
Strategy,Account,Contract,OrderId,FillId,Tag";

/// A `day` that is not a `YYYY-MM-DD` date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("day must be a date written YYYY-MM-DD")]
pub struct BadDay;

/// Reads `YYYY-MM-DD` strictly: exactly that shape, a real date. Nothing else can name a file.
///
/// # Errors
/// [`BadDay`] for anything else.
pub fn parse_day(s: &str) -> Result<NaiveDate, BadDay> {
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(BadDay);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| BadDay)
}

/// The file of one trading day in a journal directory. The name comes from a date, never from
/// user text.
pub fn path_for(dir: &Path, day: NaiveDate) -> PathBuf {
    dir.join(format!("{}.csv", day.format("%Y-%m-%d")))
}

/// Appends fills to the day's file.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    open: Option<(NaiveDate, File)>,
}

impl Journal {
    /// A journal in `dir` (created on the first fill).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            open: None,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one fill to the file of its CME trading day, with the header first when the file
    /// is new.
    ///
    /// # Errors
    /// When the directory or file cannot be created or written; the message names the path.
    pub fn append(&mut self, fill: &FillRecord) -> io::Result<()> {
        let day = crate::cme::trading_day(fill.time);
        let named = |e: io::Error, path: &Path| {
            io::Error::new(e.kind(), format!("journal {}: {e}", path.display()))
        };
        if self.open.as_ref().is_none_or(|(d, _)| *d != day) {
            self.open = None;
            let path = path_for(&self.dir, day);
            std::fs::create_dir_all(&self.dir).map_err(|e| named(e, &self.dir))?;
            let file = open_for_append(&path).map_err(|e| named(e, &path))?;
            self.open = Some((day, file));
        }
        let (_, file) = self.open.as_mut().expect("opened above");
        let mut line = String::new();
        if file.metadata()?.len() == 0 {
            line.push_str(HEADER);
            line.push('\n');
        }
        line.push_str(&row(fill));
        line.push('\n');
        // One write of the whole line on an O_APPEND file: no partial line from us survives
        // unless the process dies inside this call.
        let result = file.write_all(line.as_bytes());
        if result.is_err() {
            self.open = None;
        }
        result.map_err(|e| named(e, &path_for(&self.dir, day)))
    }
}

/// The fill ids a day's file already holds (none when there is no file), so fills a crash or a
/// stop kept out of it can be added at the next start without writing any twice.
///
/// # Errors
/// When the file exists but cannot be read.
pub fn fill_ids(dir: &Path, day: NaiveDate) -> io::Result<HashSet<i64>> {
    let text = match std::fs::read_to_string(path_for(dir, day)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(e),
    };
    let mut lines = text.lines();
    let Some(at) = lines
        .next()
        .and_then(|h| h.split(',').position(|c| c == "FillId"))
    else {
        return Ok(HashSet::new());
    };
    Ok(lines
        .filter_map(|l| cells(l).get(at).and_then(|c| c.parse().ok()))
        .collect())
}

/// The cells of one row as [`row`] writes them (quoted cells with doubled quotes).
pub fn cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let cell = cells.last_mut().expect("one cell at least");
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(String::new()),
            (c, _) => cell.push(c),
        }
    }
    cells
}

/// Opens for appending; a file whose last line was cut short by a crash gets its line ended
/// first, so the next row starts on a line of its own.
fn open_for_append(path: &Path) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
    }
    Ok(file)
}

/// One CSV row (without its line end).
pub fn row(f: &FillRecord) -> String {
    let side = if f.side == "buy" { "Buy" } else { "Sell" };
    let tick = f.tick_size;
    let cells: [String; 15] = [
        f.time.format("%Y-%m-%d").to_string(),
        f.time.format("%H:%M:%S").to_string(),
        text(&journal_symbol(&f.contract, &f.symbol)),
        f.size.to_string(),
        price_cell(f.price, tick),
        side.to_string(),
        Money(f.commissions).to_string(),
        Money(f.fees).to_string(),
        f.pnl.map(|p| Money(p).to_string()).unwrap_or_default(),
        text(&f.strategy),
        f.account_id.to_string(),
        text(&f.contract),
        f.order_id.to_string(),
        f.fill_id.to_string(),
        text(f.tag.as_deref().unwrap_or("")),
    ];
    cells.join(",")
}

/// A price on the contract's grid; with the tick unknown (a fill added at start, before the
/// contract is resolved) as written, with at least two decimals like the grid of most futures.
fn price_cell(price: f64, tick: f64) -> String {
    if tick > 0.0 {
        return Price::new(price, tick).to_string();
    }
    let plain = price.to_string();
    match plain.split_once('.') {
        Some((_, decimals)) if decimals.len() >= 2 => plain,
        _ => format!("{price:.2}"),
    }
}

/// The futures symbol journals recognise (`MNQZ25` from `CON.F.US.MNQ.Z25`); anything else as
/// the strategy named it.
fn journal_symbol(contract: &str, symbol: &str) -> String {
    let parts: Vec<&str> = contract.split('.').collect();
    match parts.as_slice() {
        ["CON", "F", _, root, month] if !root.is_empty() && month.len() >= 2 => {
            format!("{root}{month}")
        }
        _ => symbol.to_string(),
    }
}

/// A text cell: control characters become spaces; a cell a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@` first) gets a leading `'`; quoted when it holds a comma or a quote.
pub fn text(s: &str) -> String {
    let mut cell: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cell.starts_with(['=', '+', '-', '@']) {
        cell.insert(0, '\'');
    }
    if cell.contains([',', '"']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn fill(tag: Option<&str>) -> FillRecord {
        FillRecord {
            time: Utc.with_ymd_and_hms(2026, 11, 27, 15, 30, 3).unwrap(),
            strategy: "breakout".into(),
            account_id: 10001,
            contract: "CON.F.US.MNQ.Z25".into(),
            symbol: "MNQ".into(),
            side: "sell",
            size: 2,
            price: 21000.250000000004,
            tick_size: 0.25,
            pnl: Some(-5.6000000000000005),
            fees: 0.74,
            commissions: 0.0,
            order_id: 99,
            fill_id: 7,
            tag: tag.map(str::to_string),
        }
    }

    #[test]
    fn a_row_has_every_column_in_the_header_order() {
        assert_eq!(HEADER.split(',').count(), 15);
        assert_eq!(
            row(&fill(Some("exit"))),
            "2026-11-27,15:30:03,MNQZ25,2,21000.25,Sell,0.00,0.74,-5.60,breakout,10001,\
             CON.F.US.MNQ.Z25,99,7,exit"
        );
        let mut opening = fill(None);
        opening.pnl = None;
        opening.side = "buy";
        assert!(row(&opening).contains(",Buy,0.00,0.74,,breakout,"));
    }

    #[test]
    fn strategy_text_is_escaped_and_cannot_become_a_formula() {
        assert_eq!(text("a,b"), "\"a,b\"");
        assert_eq!(text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text("line\nbreak\r"), "line break ");
        assert_eq!(text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(text("+1"), "'+1");
        assert_eq!(text("-1"), "'-1");
        assert_eq!(text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text("plain tag"), "plain tag");
    }

    #[test]
    fn only_a_real_yyyy_mm_dd_names_a_day() {
        assert_eq!(
            parse_day("2026-11-27"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 27).unwrap())
        );
        for bad in [
            "",
            "2026-1-27",
            "2026-13-01",
            "2026-02-30",
            "../../etc",
            "2026-11-27/..",
            "2026/11/27",
            "+2026-11-2",
            "2026-11-27 ",
        ] {
            assert_eq!(parse_day(bad), Err(BadDay), "{bad:?}");
        }
    }

    #[test]
    fn appends_go_to_the_trading_days_file_with_one_header() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(DIR);
        let mut j = Journal::new(&dir);
        j.append(&fill(Some("a"))).unwrap();
        j.append(&fill(Some("b"))).unwrap();
        // 17:30 Chicago on a Friday is the next trading day: Monday's.
        let mut evening = fill(Some("c"));
        evening.time = Utc.with_ymd_and_hms(2026, 11, 27, 23, 30, 0).unwrap();
        j.append(&evening).unwrap();
        let day = std::fs::read_to_string(path_for(
            &dir,
            NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
        ))
        .unwrap();
        let lines: Vec<&str> = day.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], HEADER);
        assert!(lines[2].ends_with(",b"));
        let next = std::fs::read_to_string(path_for(
            &dir,
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        ))
        .unwrap();
        assert_eq!(next.lines().count(), 2);

        // A new journal (a restart) on a file whose last line a crash cut short.
        let path = path_for(&dir, NaiveDate::from_ymd_opt(2026, 11, 27).unwrap());
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"2026-11-27,15:31").unwrap();
        let mut j = Journal::new(&dir);
        j.append(&fill(Some("d"))).unwrap();
        let day = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = day.lines().collect();
        assert_eq!(lines.len(), 5, "{day}");
        assert_eq!(lines.iter().filter(|l| **l == HEADER).count(), 1);
        assert!(lines[4].ends_with(",d"));
        let day = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        assert_eq!(fill_ids(&dir, day).unwrap(), HashSet::from([7]));
        assert!(fill_ids(&dir, day.pred_opt().unwrap()).unwrap().is_empty());
    }

    #[test]
    fn a_price_without_a_known_tick_keeps_two_decimals() {
        assert_eq!(price_cell(21000.5, 0.0), "21000.50");
        assert_eq!(price_cell(21000.0, 0.0), "21000.00");
        assert_eq!(price_cell(110.03125, 0.0), "110.03125");
        assert_eq!(price_cell(21000.5, 0.25), "21000.50");
    }

    #[test]
    fn a_row_reads_back_cell_by_cell() {
        let f = fill(Some("=a, \"b\""));
        let cells = cells(&row(&f));
        assert_eq!(cells.len(), 15);
        assert_eq!(cells[13], "7");
        assert_eq!(cells[14], "'=a, \"b\"");
    }
}
