//! The ProjectX hubs' method and event names (gateway doc §5): wire facts shared by our feeds and
//! the simulator's hubs, which must agree on them.

/// Market hub: the quote event, unless `PROJECT_X_QUOTE_EVENT` names another.
pub const QUOTE_EVENT: &str = "GatewayQuote";
/// Market hub: market trade prints.
pub const MARKET_TRADE_EVENT: &str = "GatewayTrade";
/// Market hub: depth (DOM) updates.
pub const DEPTH_EVENT: &str = "GatewayDepth";

pub const SUBSCRIBE_QUOTES: &str = "SubscribeContractQuotes";
pub const UNSUBSCRIBE_QUOTES: &str = "UnsubscribeContractQuotes";
pub const SUBSCRIBE_MARKET_TRADES: &str = "SubscribeContractTrades";
pub const UNSUBSCRIBE_MARKET_TRADES: &str = "UnsubscribeContractTrades";
pub const SUBSCRIBE_DEPTH: &str = "SubscribeContractMarketDepth";
pub const UNSUBSCRIBE_DEPTH: &str = "UnsubscribeContractMarketDepth";

/// User hub events.
pub const ACCOUNT_EVENT: &str = "GatewayUserAccount";
pub const ORDER_EVENT: &str = "GatewayUserOrder";
pub const POSITION_EVENT: &str = "GatewayUserPosition";
/// One fill (half-turn) on an account.
pub const USER_TRADE_EVENT: &str = "GatewayUserTrade";

/// User hub methods: accounts take no argument, the rest an account id.
pub const SUBSCRIBE_ACCOUNTS: &str = "SubscribeAccounts";
pub const UNSUBSCRIBE_ACCOUNTS: &str = "UnsubscribeAccounts";
pub const SUBSCRIBE_ORDERS: &str = "SubscribeOrders";
pub const UNSUBSCRIBE_ORDERS: &str = "UnsubscribeOrders";
pub const SUBSCRIBE_POSITIONS: &str = "SubscribePositions";
pub const UNSUBSCRIBE_POSITIONS: &str = "UnsubscribePositions";
pub const SUBSCRIBE_USER_TRADES: &str = "SubscribeTrades";
pub const UNSUBSCRIBE_USER_TRADES: &str = "UnsubscribeTrades";
