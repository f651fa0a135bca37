//! The REST client: one typed method per gateway endpoint, with the session's token, one
//! refresh-and-retry on 401, and `success: false` turned into [`GatewayError::Rejected`].

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::endpoint::Endpoint;
use super::error::GatewayError;
use super::requests::*;
use super::session::Session;
use super::transport::SendError;
use super::wire::{Account, Bar, Contract, Envelope, Order, Position, Timestamp, Trade};
use crate::risk::RiskApproved;

/// Typed access to every REST endpoint of gateway §3.
#[derive(Debug, Clone)]
pub struct GatewayClient {
    session: Arc<Session>,
}

impl GatewayClient {
    pub fn new(session: Arc<Session>) -> Self {
        Self { session }
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    pub async fn accounts(&self, only_active: bool) -> Result<Vec<Account>, GatewayError> {
        let body = AccountSearchRequest {
            only_active_accounts: only_active,
        };
        let p: AccountsPayload = self.call(Endpoint::AccountSearch, Some(&body)).await?;
        Ok(p.accounts)
    }

    pub async fn search_contracts(
        &self,
        text: &str,
        live: bool,
    ) -> Result<Vec<Contract>, GatewayError> {
        let body = ContractSearchRequest {
            search_text: text.to_string(),
            live,
        };
        let p: ContractsPayload = self.call(Endpoint::ContractSearch, Some(&body)).await?;
        Ok(p.contracts)
    }

    pub async fn contract_by_id(&self, contract_id: &str) -> Result<Contract, GatewayError> {
        let body = ContractByIdRequest {
            contract_id: contract_id.to_string(),
        };
        let p: ContractPayload = self.call(Endpoint::ContractSearchById, Some(&body)).await?;
        p.contract
            .ok_or_else(|| missing(Endpoint::ContractSearchById, "contract"))
    }

    pub async fn available_contracts(&self, live: bool) -> Result<Vec<Contract>, GatewayError> {
        let body = ContractAvailableRequest { live };
        let p: ContractsPayload = self.call(Endpoint::ContractAvailable, Some(&body)).await?;
        Ok(p.contracts)
    }

    /// Bars newest first, as the gateway sends them.
    pub async fn retrieve_bars(
        &self,
        request: &RetrieveBarsRequest,
    ) -> Result<Vec<Bar>, GatewayError> {
        let p: BarsPayload = self.call(Endpoint::RetrieveBars, Some(request)).await?;
        Ok(p.bars)
    }

    /// Orders created in the range. Suspended bracket children are not listed by the gateway.
    pub async fn search_orders(
        &self,
        account_id: i32,
        start: Timestamp,
        end: Option<Timestamp>,
    ) -> Result<Vec<Order>, GatewayError> {
        let body = TimeRangeRequest {
            account_id,
            start_timestamp: start,
            end_timestamp: end,
        };
        let p: OrdersPayload = self.call(Endpoint::OrderSearch, Some(&body)).await?;
        Ok(p.orders)
    }

    /// Working orders (status Open only).
    pub async fn open_orders(&self, account_id: i32) -> Result<Vec<Order>, GatewayError> {
        let p: OrdersPayload = self
            .call(
                Endpoint::OrderSearchOpen,
                Some(&AccountRequest { account_id }),
            )
            .await?;
        Ok(p.orders)
    }

    pub async fn order_by_id(&self, account_id: i32, order_id: i64) -> Result<Order, GatewayError> {
        let body = OrderByIdRequest {
            account_id,
            order_id,
        };
        let p: OrderPayload = self.call(Endpoint::OrderSearchById, Some(&body)).await?;
        p.order
            .ok_or_else(|| missing(Endpoint::OrderSearchById, "order"))
    }

    pub async fn query_orders(
        &self,
        request: &OrderQueryRequest,
    ) -> Result<OrdersPayload, GatewayError> {
        self.call(Endpoint::OrderQuery, Some(request)).await
    }

    /// Places an order the risk guard approved (nothing else compiles into a place) and
    /// returns the gateway's order id.
    ///
    /// # Errors
    /// `Rejected` (its `order_id` may be set even then), or `OutcomeUnknown` when the order may
    /// or may not exist: find it by its `customTag` before placing anything again.
    pub async fn place_order(&self, order: &RiskApproved<OrderTerms>) -> Result<i64, GatewayError> {
        let request = PlaceOrderRequest::approved(order);
        let envelope: Envelope<PlaceOrderPayload> = self
            .call_envelope(Endpoint::OrderPlace, Some(&request))
            .await?;
        if !envelope.success {
            return Err(rejected(
                Endpoint::OrderPlace,
                &envelope,
                envelope.payload.order_id,
            ));
        }
        envelope
            .payload
            .order_id
            .ok_or_else(|| GatewayError::OutcomeUnknown {
                endpoint: Endpoint::OrderPlace,
                reason: "success without an orderId".into(),
            })
    }

    pub async fn cancel_order(&self, account_id: i32, order_id: i64) -> Result<(), GatewayError> {
        let body = OrderByIdRequest {
            account_id,
            order_id,
        };
        self.call::<_, Empty>(Endpoint::OrderCancel, Some(&body))
            .await
            .map(drop)
    }

    /// Changes a working order; the change must be approved too, because a bigger size is a
    /// new commitment just like a new order.
    ///
    /// # Errors
    /// `Rejected`, or `OutcomeUnknown` (look the order up before changing it again).
    pub async fn modify_order(
        &self,
        change: &RiskApproved<ModifyOrderRequest>,
    ) -> Result<(), GatewayError> {
        self.call::<_, Empty>(Endpoint::OrderModify, Some(change.payload()))
            .await
            .map(drop)
    }

    pub async fn open_positions(&self, account_id: i32) -> Result<Vec<Position>, GatewayError> {
        let p: PositionsPayload = self
            .call(
                Endpoint::PositionSearchOpen,
                Some(&AccountRequest { account_id }),
            )
            .await?;
        Ok(p.positions)
    }

    /// Flattens one contract with a market order.
    pub async fn close_position(
        &self,
        account_id: i32,
        contract_id: &str,
    ) -> Result<(), GatewayError> {
        let body = CloseContractRequest {
            account_id,
            contract_id: contract_id.to_string(),
        };
        self.call::<_, Empty>(Endpoint::PositionClose, Some(&body))
            .await
            .map(drop)
    }

    pub async fn partial_close_position(
        &self,
        account_id: i32,
        contract_id: &str,
        size: i32,
    ) -> Result<(), GatewayError> {
        let body = PartialCloseRequest {
            account_id,
            contract_id: contract_id.to_string(),
            size,
        };
        self.call::<_, Empty>(Endpoint::PositionPartialClose, Some(&body))
            .await
            .map(drop)
    }

    /// Fills (half-turns) in the range.
    pub async fn search_trades(
        &self,
        account_id: i32,
        start: Timestamp,
        end: Option<Timestamp>,
    ) -> Result<Vec<Trade>, GatewayError> {
        let body = TimeRangeRequest {
            account_id,
            start_timestamp: start,
            end_timestamp: end,
        };
        let p: TradesPayload = self.call(Endpoint::TradeSearch, Some(&body)).await?;
        Ok(p.trades)
    }

    pub async fn logout(&self) -> Result<(), GatewayError> {
        self.call::<(), Empty>(Endpoint::Logout, None)
            .await
            .map(drop)
    }

    async fn call<Req, P>(&self, endpoint: Endpoint, body: Option<&Req>) -> Result<P, GatewayError>
    where
        Req: Serialize + ?Sized,
        P: DeserializeOwned,
    {
        let envelope = self.call_envelope::<Req, P>(endpoint, body).await?;
        if envelope.success {
            Ok(envelope.payload)
        } else {
            Err(rejected(endpoint, &envelope, None))
        }
    }

    /// One call with the session's token; on 401 the token is replaced and the call sent once
    /// more (a 401 means the gateway did not act on it, so this is safe for mutating calls too).
    async fn call_envelope<Req, P>(
        &self,
        endpoint: Endpoint,
        body: Option<&Req>,
    ) -> Result<Envelope<P>, GatewayError>
    where
        Req: Serialize + ?Sized,
        P: DeserializeOwned,
    {
        let transport = self.session.transport();
        let token = self.session.ensure_valid_token().await?;
        match transport.send(endpoint, Some(&token), body).await {
            Ok(envelope) => Ok(envelope),
            Err(SendError::Other(e)) => Err(e),
            Err(SendError::Unauthorized) => {
                let token = self.session.refresh_after_unauthorized(&token).await?;
                match transport.send(endpoint, Some(&token), body).await {
                    Ok(envelope) => Ok(envelope),
                    Err(SendError::Other(e)) => Err(e),
                    Err(SendError::Unauthorized) => Err(GatewayError::Unauthorized { endpoint }),
                }
            }
        }
    }
}

fn rejected<P>(endpoint: Endpoint, envelope: &Envelope<P>, order_id: Option<i64>) -> GatewayError {
    GatewayError::Rejected {
        endpoint,
        code: envelope.error_code,
        code_name: endpoint.error_name(envelope.error_code),
        message: envelope.error_message.clone(),
        order_id,
    }
}

fn missing(endpoint: Endpoint, field: &str) -> GatewayError {
    GatewayError::Decode {
        endpoint,
        reason: format!("success without `{field}`"),
    }
}
