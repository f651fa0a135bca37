//! `moontick backtest --bars TF --from DAY --to DAY`: the bars a backtest from bars plays,
//! fetched from `History/retrieveBars` through the gateway client (so within its bars rate
//! budget), paged when a trading day holds more than one request returns, and cached.
//!
//! Cache layout (README, "Backtesting from bars"), one CSV file per contract, timeframe and
//! CME trading day:
//!
//! ```text
//! RECORD_DIR/bars/<gateway>/contracts.json              symbol -> contract id, as last resolved
//! RECORD_DIR/bars/<gateway>/<contract>/<tf>/<YYYY-MM-DD>.csv
//!     time,open,high,low,close,volume                   (time: the bar's open, RFC 3339 UTC)
//! ```
//!
//! `<gateway>` is `simulator` or the API host (as `STATE_DIR` names it), so a simulator's
//! synthetic bars never stand in for real ones. A day is written only once it is over (its
//! 17:00 Chicago end five minutes past), written whole (a temporary file renamed), and then
//! read instead of fetched; a day still trading is fetched every time. When every day a run
//! needs is cached, it makes no network call at all (not even a login).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};

use crate::bars::{Bar, Timeframe, Unit};
use crate::config::Config;
use crate::gateway::requests::RetrieveBarsRequest;
use crate::gateway::{GatewayClient, SymbolResolver};

/// A backtest over fetched bars (see the module documentation).
#[derive(Debug, Clone)]
pub struct BarsRange {
    /// The bars fetched and played (`--bars`): seconds, minutes or `1h`.
    pub timeframe: Timeframe,
    /// The first and last CME trading day (`--from`, `--to`).
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The cache root (`RECORD_DIR`); `None` fetches every time.
    pub cache: Option<PathBuf>,
    /// Credentials and API URL; without credentials the built-in simulator serves the bars,
    /// as `moontick run` trades against it.
    pub gateway: Config,
}

/// One contract's bars: those before `--from` (history) and those of the range.
pub(crate) struct Series {
    pub contract: Arc<str>,
    pub symbol: Arc<str>,
    pub history: Vec<Bar>,
    pub range: Vec<Bar>,
}

/// A day is cached once it ended this long ago (the gateway finishes its last bars).
const SETTLE: chrono::Duration = chrono::Duration::minutes(5);
/// Pages of one day at most (20,000 bars each: 1-second bars of a day need 5).
const MAX_PAGES: u32 = 50;
/// Trading days before `--from` fetched for history at most.
const MAX_HISTORY_DAYS: usize = 10;
/// Bars one run may play (each held in memory with its four prints, about 150 bytes): over a
/// year of minute bars, or a month of 1-second bars, for one symbol.
const MAX_BARS: usize = 2_000_000;

/// The weekdays from `from` to `to`: the CME trading days (holidays are days without bars).
fn trading_days(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    from.iter_days()
        .take_while(|d| *d <= to)
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .collect()
}

/// The `n` trading days before `day`, oldest first.
fn days_before(day: NaiveDate, n: usize) -> Vec<NaiveDate> {
    let mut out: Vec<NaiveDate> = day
        .pred_opt()
        .into_iter()
        .flat_map(|d| std::iter::successors(Some(d), |d| d.pred_opt()))
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .take(n)
        .collect();
    out.reverse();
    out
}

/// The instants trading day `day` spans: 17:00 Chicago the evening before (Friday for a
/// Monday) to 17:00 Chicago on the day.
fn span(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    // Noon UTC is morning in Chicago: inside the day's session.
    let noon = day.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc();
    crate::cme::trading_day_span(noon)
}

/// A bar's length in ms for an epoch-aligned timeframe; `None` for those that follow the
/// trading day (hour multiples above one, days).
fn fixed_len(tf: Timeframe) -> Option<i64> {
    let session = tf.unit() == Unit::Day || (tf.unit() == Unit::Hour && tf.count() > 1);
    (!session).then(|| {
        let (s, e) = tf.bucket(0);
        e - s
    })
}

/// Checks the range and what the strategies declare; returns the symbols and how many bars
/// of `--bars` the longest history asks for.
fn plan(
    range: &BarsRange,
    declared: &[(PathBuf, crate::script::check::Declared)],
) -> anyhow::Result<(Vec<String>, usize)> {
    ensure!(
        range.to >= range.from,
        "--to {} is before --from {}",
        range.to,
        range.from
    );
    let base = range.timeframe;
    let Some(base_len) = fixed_len(base) else {
        bail!(
            "--bars {base}: bars are played within their interval, so take seconds, minutes or 1h \
             (the strategy's own bars can be longer: they are built from these)"
        );
    };
    let mut symbols: Vec<String> = Vec::new();
    let mut need = 0usize;
    for (path, d) in declared {
        for s in &d.symbols {
            if !symbols.iter().any(|k| k.eq_ignore_ascii_case(s)) {
                symbols.push(s.clone());
            }
        }
        for (symbol, tf) in &d.bars {
            let per = match fixed_len(*tf) {
                Some(len) if len % base_len == 0 => len / base_len,
                // Days and hour multiples start on whole hours, which every base divides; a
                // trading day has at most 23 hours of bars.
                None if tf.unit() == Unit::Hour => i64::from(tf.count()) * 3_600_000 / base_len,
                None => 23 * 3_600_000 / base_len,
                Some(_) => bail!(
                    "{}: declares {tf} bars of {symbol}, which cannot be built from --bars {base} \
                     (a declared timeframe must be a whole multiple of it)",
                    path.display()
                ),
            };
            need = need.max(d.history.saturating_mul(per as usize));
        }
    }
    ensure!(
        !symbols.is_empty(),
        "the strategies declare no symbols: nothing to fetch bars for"
    );
    Ok((symbols, need))
}

/// The cache of one gateway.
struct Cache {
    dir: PathBuf,
}

impl Cache {
    fn day_path(&self, contract: &str, tf: Timeframe, day: NaiveDate) -> PathBuf {
        self.dir
            .join(contract)
            .join(tf.to_string())
            .join(format!("{day}.csv"))
    }

    fn contracts(&self) -> BTreeMap<String, String> {
        std::fs::read(self.dir.join("contracts.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save_contracts(&self, map: &BTreeMap<String, String>) -> anyhow::Result<()> {
        let text = serde_json::to_vec_pretty(map)?;
        write_whole(&self.dir.join("contracts.json"), &text)
    }

    fn read(&self, contract: &str, tf: Timeframe, day: NaiveDate) -> Option<Vec<Bar>> {
        let path = self.day_path(contract, tf, day);
        let text = std::fs::read_to_string(&path).ok()?;
        let parsed = parse_csv(&text);
        if parsed.is_none() {
            tracing::warn!("{}: not a bars cache file; fetching again", path.display());
        }
        parsed
    }

    fn write(
        &self,
        contract: &str,
        tf: Timeframe,
        day: NaiveDate,
        bars: &[Bar],
    ) -> anyhow::Result<()> {
        write_whole(&self.day_path(contract, tf, day), to_csv(bars).as_bytes())
    }
}

/// Writes a file whole: a temporary file beside it, renamed over it.
fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

const CSV_HEADER: &str = "time,open,high,low,close,volume";

fn to_csv(bars: &[Bar]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for b in bars {
        let t = DateTime::<Utc>::from_timestamp_millis(b.time_ms).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume
        ));
    }
    out
}

fn parse_csv(text: &str) -> Option<Vec<Bar>> {
    let mut lines = text.lines();
    if lines.next()? != CSV_HEADER {
        return None;
    }
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let [t, o, h, l, c, v] = f.as_slice() else {
                return None;
            };
            Some(Bar {
                time_ms: DateTime::parse_from_rfc3339(t).ok()?.timestamp_millis(),
                open: o.parse().ok()?,
                high: h.parse().ok()?,
                low: l.parse().ok()?,
                close: c.parse().ok()?,
                volume: v.parse().ok()?,
            })
        })
        .collect()
}

/// One trading day's bars of `tf`, oldest first, paged backwards from the day's end (the
/// gateway keeps the most recent bars of a window when it holds more than the limit).
/// Returns the bars and the number of requests made.
async fn fetch_day(
    client: &GatewayClient,
    contract: &str,
    tf: Timeframe,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    limit: usize,
) -> anyhow::Result<(Vec<Bar>, u32)> {
    let mut bars: Vec<Bar> = Vec::new();
    let mut until = end;
    let mut requests = 0;
    loop {
        let req = RetrieveBarsRequest {
            contract_id: contract.to_owned(),
            live: false,
            start_time: start.into(),
            end_time: until.into(),
            unit: crate::feed::bars::wire_unit(tf.unit()),
            unit_number: tf.count() as i32,
            limit: limit as i32,
            include_partial_bar: false,
        };
        let got = client
            .retrieve_bars(&req)
            .await
            .with_context(|| format!("History/retrieveBars for {contract} {tf} from {start}"))?;
        requests += 1;
        let oldest = got.iter().map(|b| b.t.0).min();
        bars.extend(
            got.iter()
                .filter(|b| b.t.0 >= start && b.t.0 < until)
                .map(crate::feed::bars::to_bar),
        );
        match oldest {
            Some(o) if got.len() >= limit && o > start && o < until => {
                ensure!(
                    requests < MAX_PAGES,
                    "History/retrieveBars for {contract} {tf}: more than {MAX_PAGES} pages in one day"
                );
                until = o;
            }
            _ => break,
        }
    }
    bars.sort_by_key(|b| b.time_ms);
    bars.dedup_by_key(|b| b.time_ms);
    Ok((bars, requests))
}

/// Loads every series the strategies need: from the cache, else from the gateway (see the
/// module documentation). `declared` is what each strategy file declares.
///
/// # Errors
/// A bad range or timeframe, a failed login or request, an unwritable cache.
pub(crate) fn load(
    range: &BarsRange,
    declared: &[(PathBuf, crate::script::check::Declared)],
) -> anyhow::Result<Vec<Series>> {
    let (symbols, need) = plan(range, declared)?;
    let tf = range.timeframe;
    let days = trading_days(range.from, range.to);
    ensure!(
        !days.is_empty(),
        "--from {} --to {} holds no CME trading day (Saturdays and Sundays have none)",
        range.from,
        range.to
    );
    let per_day = (23 * 3_600_000 / fixed_len(tf).unwrap_or(60_000)) as usize;
    ensure!(
        days.len() * per_day * symbols.len() <= MAX_BARS,
        "--from {} --to {} is {} trading day(s) of about {per_day} {tf} bars for {} symbol(s); \
         at most {MAX_BARS} bars per run: shorten the range or take longer bars",
        range.from,
        range.to,
        days.len(),
        symbols.len()
    );
    let history_days = days_before(range.from, need.div_ceil(per_day).min(MAX_HISTORY_DAYS));
    let wanted: Vec<NaiveDate> = history_days.iter().chain(&days).copied().collect();

    let label = if range.gateway.has_gateway_credentials() {
        crate::run::state_dir::gateway_label(&range.gateway.api_url)
    } else {
        crate::run::state_dir::SIMULATOR.to_string()
    };
    let cache = range.cache.as_ref().map(|root| Cache {
        dir: root.join("bars").join(&label),
    });
    if cache.is_none() {
        tracing::warn!("RECORD_DIR is empty: bars are fetched every run, not cached");
    }
    let mut mapping = cache.as_ref().map(Cache::contracts).unwrap_or_default();

    // What the cache holds, per symbol: the contract and each wanted day it has.
    let mut found: Vec<Found> = Vec::new();
    for s in &symbols {
        let contract = mapping.get(&s.to_ascii_uppercase()).cloned();
        let mut have = BTreeMap::new();
        if let (Some(c), Some(cache)) = (&contract, &cache) {
            for d in &wanted {
                if let Some(bars) = cache.read(c, tf, *d) {
                    have.insert(*d, bars);
                }
            }
        }
        found.push((s.clone(), contract, have));
    }
    let complete =
        |have: &BTreeMap<NaiveDate, Vec<Bar>>| wanted.iter().all(|d| have.contains_key(d));
    if found
        .iter()
        .any(|(_, c, have)| c.is_none() || !complete(have))
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let gateway = crate::run::connect(&range.gateway).await?;
            let result = fetch_missing(
                &gateway.client,
                tf,
                &wanted,
                cache.as_ref(),
                &mut mapping,
                &mut found,
            )
            .await;
            if let Some(sim) = gateway.sim {
                sim.shutdown().await;
            }
            result
        })?;
    }
    let days_of = |have: &BTreeMap<NaiveDate, Vec<Bar>>, list: &[NaiveDate]| -> Vec<Bar> {
        list.iter()
            .filter_map(|d| have.get(d))
            .flatten()
            .copied()
            .collect()
    };
    let series: Vec<Series> = found
        .into_iter()
        .map(|(symbol, contract, have)| Series {
            contract: contract.unwrap_or_default().into(),
            symbol: symbol.into(),
            history: days_of(&have, &history_days),
            range: days_of(&have, &days),
        })
        .collect();
    for s in &series {
        ensure!(
            !s.range.is_empty(),
            "no {tf} bars of {} ({}) from {} to {}",
            s.symbol,
            s.contract,
            range.from,
            range.to
        );
    }
    Ok(series)
}

/// A symbol, the contract it was last resolved to, and the days of it at hand.
type Found = (String, Option<String>, BTreeMap<NaiveDate, Vec<Bar>>);

/// Resolves the symbols and fetches the days the cache lacks, caching the finished ones.
async fn fetch_missing(
    client: &GatewayClient,
    tf: Timeframe,
    wanted: &[NaiveDate],
    cache: Option<&Cache>,
    mapping: &mut BTreeMap<String, String>,
    found: &mut [Found],
) -> anyhow::Result<()> {
    let resolver = SymbolResolver::new(client.clone());
    let now = Utc::now();
    let (mut requests, mut fetched, mut cached) = (0u32, 0usize, 0usize);
    for (symbol, contract, have) in found.iter_mut() {
        if contract.is_some() && wanted.iter().all(|d| have.contains_key(d)) {
            // All cached: another symbol's miss is no reason to look this one up again.
            cached += wanted.len();
            continue;
        }
        let resolved = resolver
            .resolve(symbol)
            .await
            .with_context(|| format!("resolving {symbol} for its bars"))?;
        if contract.as_deref() != Some(resolved.id.as_str()) {
            // Days cached under another contract are not this one's.
            have.clear();
        }
        let id = resolved.id.clone();
        *contract = Some(id.clone());
        mapping.insert(symbol.to_ascii_uppercase(), id.clone());
        if let Some(cache) = cache {
            cache.save_contracts(mapping)?;
        }
        for day in wanted {
            if have.contains_key(day) {
                cached += 1;
                continue;
            }
            let (start, end) = span(*day);
            if start >= now {
                have.insert(*day, Vec::new());
                continue;
            }
            let (bars, n) = fetch_day(
                client,
                &id,
                tf,
                start,
                end.min(now),
                crate::feed::bars::MAX_LIMIT,
            )
            .await?;
            requests += n;
            fetched += 1;
            tracing::info!("bars {symbol} {tf} {day}: {} bar(s) fetched", bars.len());
            if end + SETTLE <= now
                && let Some(cache) = cache
            {
                cache.write(&id, tf, *day, &bars)?;
            }
            have.insert(*day, bars);
        }
    }
    tracing::info!(
        "bars {tf}: {fetched} day(s) fetched in {requests} request(s), {cached} from the cache"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn trading_days_skip_weekends_and_history_days_go_back_across_them() {
        assert_eq!(
            trading_days(day("2026-11-06"), day("2026-11-09")),
            [day("2026-11-06"), day("2026-11-09")]
        );
        assert_eq!(
            days_before(day("2026-11-09"), 2),
            [day("2026-11-05"), day("2026-11-06")]
        );
        // Monday's day opens Friday 17:00 Chicago (CST: 23:00 UTC) and ends Monday 17:00.
        let (s, e) = span(day("2026-11-09"));
        assert_eq!(s.to_rfc3339(), "2026-11-06T23:00:00+00:00");
        assert_eq!(e.to_rfc3339(), "2026-11-09T23:00:00+00:00");
    }

    #[tokio::test]
    async fn a_day_over_the_request_limit_is_paged_back_from_its_end() {
        let sim = crate::sim::Simulator::start(crate::sim::SimConfig {
            quote_rate: 0.0,
            ..crate::sim::SimConfig::default()
        })
        .await
        .unwrap();
        let client = crate::gateway::connect(
            &sim.url(),
            None,
            Some(crate::gateway::Credentials {
                username: "demo".into(),
                api_key: crate::secret::Secret::new("demo"),
            }),
            crate::gateway::TransportOptions::default(),
        )
        .unwrap();
        let contract = sim.contract_id("MNQ").unwrap();
        let tf = Timeframe::parse("1m").unwrap();
        // A weekday well before the simulator's start: synthetic history, every minute traded.
        let today = Utc::now().date_naive();
        let past = trading_days(today - chrono::Days::new(14), today - chrono::Days::new(8));
        let (start, end) = span(past[1]);
        let (whole, one) = fetch_day(&client, &contract, tf, start, end, 20_000)
            .await
            .unwrap();
        assert_eq!(one, 1);
        let minutes = (end - start).num_minutes() as usize;
        assert_eq!(
            whole.len(),
            minutes,
            "the simulator trades around the clock"
        );
        let (paged, pages) = fetch_day(&client, &contract, tf, start, end, 500)
            .await
            .unwrap();
        assert_eq!(pages, minutes.div_ceil(500) as u32, "500 bars a page");
        assert_eq!(paged, whole);
        assert!(whole.windows(2).all(|w| w[0].time_ms < w[1].time_ms));
        assert_eq!(whole[0].time_ms, start.timestamp_millis());
        sim.shutdown().await;
    }

    #[test]
    fn the_csv_round_trips_and_anything_else_is_refused() {
        let bars = vec![Bar {
            time_ms: 1_793_000_040_000,
            open: 21_000.25,
            high: 21_003.5,
            low: 20_999.75,
            close: 21_001.0,
            volume: 17,
        }];
        assert_eq!(parse_csv(&to_csv(&bars)), Some(bars));
        assert_eq!(parse_csv(&to_csv(&[])), Some(vec![]));
        assert_eq!(parse_csv("time,open\n"), None);
        assert_eq!(parse_csv(&format!("{CSV_HEADER}\nx,1,2,3,4,5\n")), None);
    }
}
