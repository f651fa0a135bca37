// The official @microsoft/signalr client against the simulator's market hub, connected the way
// ProjectX's documentation shows (skipNegotiation, WebSockets, access_token in the URL and an
// accessTokenFactory): log in over REST, find the MNQ front month, subscribe to its quotes and
// check that GatewayQuote arrives as [contractId, {symbol, bestBid, ...}].
//
// Env: SIM_URL (http://127.0.0.1:PORT), SIM_USER, SIM_KEY. Exits 0 on success, 1 with a reason.
import * as signalR from "@microsoft/signalr";

const base = process.env.SIM_URL;
const user = process.env.SIM_USER ?? "demo";
const key = process.env.SIM_KEY ?? "demo";
const LIMIT_MS = 20000;

function fail(message) {
  console.error(`js conformance FAILED: ${message}`);
  process.exit(1);
}

if (!base) fail("SIM_URL is not set");
const timer = setTimeout(() => fail(`no valid GatewayQuote within ${LIMIT_MS} ms`), LIMIT_MS);

async function post(path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method: "POST", headers, body: JSON.stringify(body) });
  if (!res.ok) fail(`${path} answered HTTP ${res.status}`);
  return res.json();
}

const login = await post("/api/Auth/loginKey", { userName: user, apiKey: key });
if (!login.success || !login.token) fail(`login refused: ${JSON.stringify(login)}`);
const token = login.token;

const search = await post("/api/Contract/search", { searchText: "MNQ", live: false }, token);
const contract = (search.contracts ?? []).find((c) => c.symbolId === "F.US.MNQ" && c.activeContract);
if (!contract) fail(`no active F.US.MNQ contract in ${JSON.stringify(search)}`);

const connection = new signalR.HubConnectionBuilder()
  .withUrl(`${base}/hubs/market?access_token=${encodeURIComponent(token)}`, {
    skipNegotiation: true,
    transport: signalR.HttpTransportType.WebSockets,
    accessTokenFactory: () => token,
    timeout: 10000,
  })
  .configureLogging(signalR.LogLevel.Warning)
  .build();

const received = new Promise((resolve) => {
  connection.on("GatewayQuote", (...args) => resolve(args));
});

try {
  await connection.start();
} catch (e) {
  fail(`connect: ${e}`);
}
try {
  await connection.invoke("SubscribeContractQuotes", contract.id);
} catch (e) {
  fail(`SubscribeContractQuotes: ${e}`);
}

const args = await received;
if (args.length !== 2) fail(`GatewayQuote has ${args.length} arguments, expected 2: ${JSON.stringify(args)}`);
const [contractId, quote] = args;
if (contractId !== contract.id) fail(`first argument ${JSON.stringify(contractId)} is not ${contract.id}`);
if (typeof quote !== "object" || quote === null || Array.isArray(quote)) {
  fail(`second argument is not an object: ${JSON.stringify(quote)}`);
}
if (quote.symbol !== "F.US.MNQ") fail(`symbol is ${JSON.stringify(quote.symbol)}`);
for (const field of ["bestBid", "bestAsk", "lastPrice"]) {
  if (typeof quote[field] !== "number" || !(quote[field] > 0)) {
    fail(`${field} is ${JSON.stringify(quote[field])} in the first quote ${JSON.stringify(quote)}`);
  }
}
if (!(quote.bestAsk > quote.bestBid)) fail(`crossed quote ${JSON.stringify(quote)}`);
if (typeof quote.timestamp !== "string") fail(`timestamp missing: ${JSON.stringify(quote)}`);

await connection.invoke("UnsubscribeContractQuotes", contract.id).catch((e) => fail(`unsubscribe: ${e}`));
await connection.stop();
clearTimeout(timer);
console.log(`js conformance ok: GatewayQuote [${contractId}, {bestBid: ${quote.bestBid}, bestAsk: ${quote.bestAsk}, ...}]`);
process.exit(0);
