//! The recording format, version 1: the bytes of a segment header and of each quote, trade and
//! depth record, written and read here only (`docs/recording.md` describes them). Pure: no I/O
//! beyond the `Read` it is handed.
//!
//! Binary and little-endian rather than JSON lines: a backtest reads millions of quotes a
//! second, and zstd takes the repetition out either way.

use std::io::{self, Read};
use std::sync::Arc;

use crate::market::{Depth, DepthLevel, Quote, Side, Trade};

/// The first bytes of every segment: a file is one or more segments (one per writer session).
pub const MAGIC: &[u8; 8] = b"MTICKREC";
/// The version this build writes and the only one it reads.
pub const VERSION: u16 = 1;
/// The file name ending of a recording: zstd frames, so `zstd -d` opens it too.
pub const EXTENSION: &str = ".mtr.zst";

const TAG_QUOTE: u8 = b'Q';
const TAG_TRADES: u8 = b'T';
const TAG_DEPTH: u8 = b'D';
/// A segment header starts with the magic, whose first byte doubles as its tag.
const TAG_HEADER: u8 = MAGIC[0];

/// Bits of a quote record's presence mask, in the order the fields follow it.
const Q_BID: u8 = 1;
const Q_ASK: u8 = 1 << 1;
const Q_LAST: u8 = 1 << 2;
const Q_OPEN: u8 = 1 << 3;
const Q_HIGH: u8 = 1 << 4;
const Q_LOW: u8 = 1 << 5;
const Q_CHANGE: u8 = 1 << 6;
const Q_VOLUME: u8 = 1 << 7;

/// What a segment header says: the version, when the writer opened it, and whose data follows.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub version: u16,
    /// Microseconds since the Unix epoch when the writer opened the segment.
    pub started_us: i64,
    pub contract: Arc<str>,
    pub symbol: Arc<str>,
}

/// One recorded market event: what the feed handed the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// The merged quote, as strategies saw it.
    Quote(Quote),
    /// Trade prints that arrived together.
    Trades(Vec<Trade>),
    Depth(Depth),
}

/// A recorded event with its receive time. The exchange's own time is inside the event
/// (`time_ms` of the quote, each trade, the depth update).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Microseconds since the Unix epoch when the feed received it (the engine's wall clock).
    pub recv_us: i64,
    pub event: Recorded,
}

impl RecordedEvent {
    /// The receive time in milliseconds, the unit of `bot.now()`'s clock.
    pub fn recv_ms(&self) -> i64 {
        self.recv_us.div_euclid(1000)
    }

    /// The exchange timestamp in milliseconds (of the first print, for trades).
    pub fn exchange_ms(&self) -> i64 {
        match &self.event {
            Recorded::Quote(q) => q.time_ms,
            Recorded::Trades(t) => t.first().map_or(0, |t| t.time_ms),
            Recorded::Depth(d) => d.time_ms,
        }
    }
}

/// Appends a segment header.
pub fn write_header(out: &mut Vec<u8>, started_us: i64, contract: &str, symbol: &str) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // flags, reserved
    out.extend_from_slice(&started_us.to_le_bytes());
    put_str(out, contract);
    put_str(out, symbol);
}

/// Appends one record. Trades with no prints write nothing.
pub fn write_event(out: &mut Vec<u8>, recv_us: i64, event: &Recorded) {
    match event {
        Recorded::Quote(q) => {
            out.push(TAG_QUOTE);
            out.extend_from_slice(&recv_us.to_le_bytes());
            out.extend_from_slice(&q.time_ms.to_le_bytes());
            let fields = [
                (Q_BID, q.bid),
                (Q_ASK, q.ask),
                (Q_LAST, q.last),
                (Q_OPEN, q.open),
                (Q_HIGH, q.high),
                (Q_LOW, q.low),
                (Q_CHANGE, q.change),
            ];
            let mut mask = fields
                .iter()
                .filter(|(_, v)| v.is_some())
                .fold(0, |m, (bit, _)| m | bit);
            if q.volume.is_some() {
                mask |= Q_VOLUME;
            }
            out.push(mask);
            for v in fields.iter().filter_map(|(_, v)| *v) {
                out.extend_from_slice(&v.to_le_bytes());
            }
            if let Some(v) = q.volume {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Recorded::Trades(trades) if trades.is_empty() => {}
        Recorded::Trades(trades) => {
            out.push(TAG_TRADES);
            out.extend_from_slice(&recv_us.to_le_bytes());
            let n = trades.len().min(u16::MAX as usize);
            out.extend_from_slice(&(n as u16).to_le_bytes());
            for t in &trades[..n] {
                out.extend_from_slice(&t.time_ms.to_le_bytes());
                out.extend_from_slice(&t.price.to_le_bytes());
                out.extend_from_slice(&t.size.to_le_bytes());
                out.push(match t.side {
                    None => 0,
                    Some(Side::Buy) => 1,
                    Some(Side::Sell) => 2,
                });
            }
        }
        Recorded::Depth(d) => {
            out.push(TAG_DEPTH);
            out.extend_from_slice(&recv_us.to_le_bytes());
            out.extend_from_slice(&d.time_ms.to_le_bytes());
            let n = d.levels.len().min(u16::MAX as usize);
            out.extend_from_slice(&(n as u16).to_le_bytes());
            for l in &d.levels[..n] {
                out.push(side_byte(l.side));
                out.extend_from_slice(&l.price.to_le_bytes());
                out.extend_from_slice(&l.size.to_le_bytes());
            }
        }
    }
}

fn side_byte(side: Side) -> u8 {
    match side {
        Side::Buy => 1,
        Side::Sell => 2,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// What reading one item of the decompressed stream gave.
#[derive(Debug)]
pub enum Item {
    Header(Header),
    Event(RecordedEvent),
    /// The stream ended cleanly, between two records.
    End,
}

/// Why an item could not be read.
#[derive(Debug)]
pub enum ItemError {
    /// The stream ended inside a record or a zstd frame: the tail was cut (a crash mid-write).
    Truncated,
    /// A segment of another version.
    Version(u16),
    /// Bytes that are no record of this format.
    Corrupt(String),
    Io(io::Error),
}

impl From<io::Error> for ItemError {
    fn from(e: io::Error) -> Self {
        // zstd reports a frame cut short as an unexpected end; so does `read_exact` inside a
        // record. Both mean the file stops mid-write.
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ItemError::Truncated
        } else {
            ItemError::Io(e)
        }
    }
}

/// Reads one item; `names` are the contract and symbol of the segment being read (`None`
/// before its header), shared by every event of it.
///
/// # Errors
/// See [`ItemError`].
pub fn read_item(
    r: &mut impl Read,
    names: Option<&(Arc<str>, Arc<str>)>,
) -> Result<Item, ItemError> {
    let mut tag = [0u8; 1];
    loop {
        match r.read(&mut tag) {
            Ok(0) => return Ok(Item::End),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    if tag[0] == TAG_HEADER {
        return read_header(r).map(Item::Header);
    }
    let Some((contract, symbol)) = names else {
        return Err(ItemError::Corrupt(
            "no moontick recording header at the start".into(),
        ));
    };
    let recv_us = i64_le(r)?;
    let event = match tag[0] {
        TAG_QUOTE => {
            let time_ms = i64_le(r)?;
            let mask = u8_le(r)?;
            let mut field = |bit: u8| -> Result<Option<f64>, ItemError> {
                Ok(if mask & bit != 0 {
                    Some(f64_le(r)?)
                } else {
                    None
                })
            };
            let (bid, ask, last) = (field(Q_BID)?, field(Q_ASK)?, field(Q_LAST)?);
            let (open, high, low) = (field(Q_OPEN)?, field(Q_HIGH)?, field(Q_LOW)?);
            let change = field(Q_CHANGE)?;
            let volume = if mask & Q_VOLUME != 0 {
                Some(i64_le(r)?)
            } else {
                None
            };
            Recorded::Quote(Quote {
                contract: contract.clone(),
                symbol: symbol.clone(),
                bid,
                ask,
                last,
                volume,
                open,
                high,
                low,
                change,
                time_ms,
            })
        }
        TAG_TRADES => {
            let n = u16_le(r)?;
            let mut trades = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let time_ms = i64_le(r)?;
                let price = f64_le(r)?;
                let size = f64_le(r)?;
                let side = match u8_le(r)? {
                    0 => None,
                    1 => Some(Side::Buy),
                    2 => Some(Side::Sell),
                    b => return Err(ItemError::Corrupt(format!("trade side byte {b}"))),
                };
                trades.push(Trade {
                    contract: contract.clone(),
                    symbol: symbol.clone(),
                    price,
                    size,
                    side,
                    time_ms,
                });
            }
            if trades.is_empty() {
                return Err(ItemError::Corrupt("a trade record with no prints".into()));
            }
            Recorded::Trades(trades)
        }
        TAG_DEPTH => {
            let time_ms = i64_le(r)?;
            let n = u16_le(r)?;
            let mut levels = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let side = match u8_le(r)? {
                    1 => Side::Buy,
                    2 => Side::Sell,
                    b => return Err(ItemError::Corrupt(format!("depth side byte {b}"))),
                };
                let price = f64_le(r)?;
                let size = f64_le(r)?;
                levels.push(DepthLevel { side, price, size });
            }
            Recorded::Depth(Depth {
                contract: contract.clone(),
                symbol: symbol.clone(),
                levels,
                time_ms,
            })
        }
        other => {
            return Err(ItemError::Corrupt(format!(
                "unknown record type 0x{other:02x}"
            )));
        }
    };
    Ok(Item::Event(RecordedEvent { recv_us, event }))
}

/// The rest of a header, after its first byte.
fn read_header(r: &mut impl Read) -> Result<Header, ItemError> {
    let mut magic = [0u8; 7];
    r.read_exact(&mut magic)?;
    if magic != MAGIC[1..] {
        return Err(ItemError::Corrupt(
            "not a moontick recording (bad magic)".into(),
        ));
    }
    let version = u16_le(r)?;
    if version != VERSION {
        return Err(ItemError::Version(version));
    }
    let _flags = u16_le(r)?;
    let started_us = i64_le(r)?;
    let contract = get_str(r)?;
    let symbol = get_str(r)?;
    Ok(Header {
        version,
        started_us,
        contract: contract.into(),
        symbol: symbol.into(),
    })
}

fn get_str(r: &mut impl Read) -> Result<String, ItemError> {
    let n = u16_le(r)? as usize;
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf)?;
    String::from_utf8(buf).map_err(|_| ItemError::Corrupt("a name that is not UTF-8".into()))
}

fn u8_le(r: &mut impl Read) -> Result<u8, ItemError> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn u16_le(r: &mut impl Read) -> Result<u16, ItemError> {
    let mut b = [0u8; 2];
    r.read_exact(&mut b)?;
    Ok(u16::from_le_bytes(b))
}

fn i64_le(r: &mut impl Read) -> Result<i64, ItemError> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(i64::from_le_bytes(b))
}

fn f64_le(r: &mut impl Read) -> Result<f64, ItemError> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(f64::from_le_bytes(b))
}
