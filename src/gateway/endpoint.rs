//! The REST endpoints of gateway §2–3: paths, which ones mutate, their rate bucket, and each
//! endpoint's own `errorCode` names (the same integer means different things per endpoint).

/// One REST endpoint of the ProjectX gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    LoginKey,
    LoginApp,
    Validate,
    Logout,
    AccountSearch,
    ContractSearch,
    ContractSearchById,
    ContractAvailable,
    RetrieveBars,
    OrderSearch,
    OrderSearchOpen,
    OrderSearchById,
    OrderQuery,
    OrderPlace,
    OrderCancel,
    OrderModify,
    PositionSearchOpen,
    PositionClose,
    PositionPartialClose,
    TradeSearch,
}

impl Endpoint {
    pub const ALL: [Endpoint; 20] = [
        Self::LoginKey,
        Self::LoginApp,
        Self::Validate,
        Self::Logout,
        Self::AccountSearch,
        Self::ContractSearch,
        Self::ContractSearchById,
        Self::ContractAvailable,
        Self::RetrieveBars,
        Self::OrderSearch,
        Self::OrderSearchOpen,
        Self::OrderSearchById,
        Self::OrderQuery,
        Self::OrderPlace,
        Self::OrderCancel,
        Self::OrderModify,
        Self::PositionSearchOpen,
        Self::PositionClose,
        Self::PositionPartialClose,
        Self::TradeSearch,
    ];

    /// The path from the host root; every one is a `POST` with a JSON body.
    pub fn path(self) -> &'static str {
        match self {
            Self::LoginKey => "/api/Auth/loginKey",
            Self::LoginApp => "/api/Auth/loginApp",
            Self::Validate => "/api/Auth/validate",
            Self::Logout => "/api/Auth/logout",
            Self::AccountSearch => "/api/Account/search",
            Self::ContractSearch => "/api/Contract/search",
            Self::ContractSearchById => "/api/Contract/searchById",
            Self::ContractAvailable => "/api/Contract/available",
            Self::RetrieveBars => "/api/History/retrieveBars",
            Self::OrderSearch => "/api/Order/search",
            Self::OrderSearchOpen => "/api/Order/searchOpen",
            Self::OrderSearchById => "/api/Order/searchById",
            Self::OrderQuery => "/api/Order/v2/query",
            Self::OrderPlace => "/api/Order/place",
            Self::OrderCancel => "/api/Order/cancel",
            Self::OrderModify => "/api/Order/modify",
            Self::PositionSearchOpen => "/api/Position/searchOpen",
            Self::PositionClose => "/api/Position/closeContract",
            Self::PositionPartialClose => "/api/Position/partialCloseContract",
            Self::TradeSearch => "/api/Trade/search",
        }
    }

    /// Matches a request path, ignoring ASCII case as ASP.NET routing does.
    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|e| e.path().eq_ignore_ascii_case(path))
    }

    /// A short name for logs and errors, e.g. `Order/place`.
    pub fn name(self) -> &'static str {
        &self.path()[5..]
    }

    /// Calls that change the account. When their outcome is unknown they are never retried
    /// blindly: the caller reconciles first.
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            Self::OrderPlace
                | Self::OrderCancel
                | Self::OrderModify
                | Self::PositionClose
                | Self::PositionPartialClose
        )
    }

    /// Calls made without a bearer token.
    pub fn is_login(self) -> bool {
        matches!(self, Self::LoginKey | Self::LoginApp)
    }

    /// Bars have their own, tighter rate limit (50 / 30 s against 200 / 60 s for the rest).
    pub fn is_bars(self) -> bool {
        self == Self::RetrieveBars
    }

    /// The name of this endpoint's `errorCode`, or `"Unknown"` for a code it does not document.
    pub fn error_name(self, code: i32) -> &'static str {
        let names: &[&str] = match self {
            Self::LoginKey | Self::LoginApp => &[
                "Success",
                "UserNotFound",
                "PasswordVerificationFailed",
                "InvalidCredentials",
                "AppNotFound",
                "AppVerificationFailed",
                "InvalidDevice",
                "AgreementsNotSigned",
                "UnknownError",
                "ApiSubscriptionNotFound",
                "ApiKeyAuthenticationDisabled",
            ],
            Self::Validate => &[
                "Success",
                "InvalidSession",
                "SessionNotFound",
                "ExpiredToken",
                "UnknownError",
            ],
            Self::Logout => &["Success", "InvalidSession", "UnknownError"],
            Self::AccountSearch | Self::ContractSearch | Self::ContractAvailable => &["Success"],
            Self::ContractSearchById => &["Success", "ContractNotFound"],
            Self::RetrieveBars => &[
                "Success",
                "ContractNotFound",
                "UnitInvalid",
                "UnitNumberInvalid",
                "LimitInvalid",
            ],
            Self::OrderSearch
            | Self::OrderSearchOpen
            | Self::OrderQuery
            | Self::PositionSearchOpen
            | Self::TradeSearch => &["Success", "AccountNotFound"],
            Self::OrderSearchById => &["Success", "OrderNotFound"],
            Self::OrderPlace => &[
                "Success",
                "AccountNotFound",
                "OrderRejected",
                "InsufficientFunds",
                "AccountViolation",
                "OutsideTradingHours",
                "OrderPending",
                "UnknownError",
                "ContractNotFound",
                "ContractNotActive",
                "AccountRejected",
            ],
            Self::OrderCancel => &[
                "Success",
                "AccountNotFound",
                "OrderNotFound",
                "Rejected",
                "Pending",
                "UnknownError",
                "AccountRejected",
            ],
            Self::OrderModify => &[
                "Success",
                "AccountNotFound",
                "OrderNotFound",
                "Rejected",
                "Pending",
                "UnknownError",
                "AccountRejected",
                "ContractNotFound",
            ],
            Self::PositionClose => &[
                "Success",
                "AccountNotFound",
                "PositionNotFound",
                "ContractNotFound",
                "ContractNotActive",
                "OrderRejected",
                "OrderPending",
                "UnknownError",
                "AccountRejected",
            ],
            Self::PositionPartialClose => &[
                "Success",
                "AccountNotFound",
                "PositionNotFound",
                "ContractNotFound",
                "ContractNotActive",
                "InvalidCloseSize",
                "OrderRejected",
                "OrderPending",
                "UnknownError",
                "AccountRejected",
            ],
        };
        usize::try_from(code)
            .ok()
            .and_then(|i| names.get(i).copied())
            .unwrap_or("Unknown")
    }

    /// The code for a name, for the simulator: the inverse of [`Endpoint::error_name`].
    pub fn error_code(self, name: &str) -> Option<i32> {
        (0..16).find(|&c| self.error_name(c) == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_and_ignore_case() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::from_path(e.path()), Some(e));
        }
        assert_eq!(
            Endpoint::from_path("/api/order/PLACE"),
            Some(Endpoint::OrderPlace)
        );
        assert_eq!(Endpoint::from_path("/api/Order/nope"), None);
        assert_eq!(Endpoint::OrderPlace.name(), "Order/place");
    }

    #[test]
    fn error_codes_are_per_endpoint() {
        // The shifted codes between close and partial close are the classic trap.
        assert_eq!(Endpoint::PositionClose.error_name(5), "OrderRejected");
        assert_eq!(
            Endpoint::PositionPartialClose.error_name(5),
            "InvalidCloseSize"
        );
        assert_eq!(Endpoint::LoginKey.error_name(3), "InvalidCredentials");
        assert_eq!(Endpoint::Validate.error_name(3), "ExpiredToken");
        assert_eq!(Endpoint::OrderPlace.error_name(2), "OrderRejected");
        assert_eq!(Endpoint::OrderModify.error_name(7), "ContractNotFound");
        assert_eq!(Endpoint::OrderCancel.error_name(7), "Unknown");
        assert_eq!(Endpoint::OrderPlace.error_name(-1), "Unknown");
        assert_eq!(
            Endpoint::OrderPlace.error_code("ContractNotActive"),
            Some(9)
        );
    }

    #[test]
    fn only_the_five_account_changing_calls_mutate() {
        let mutating: Vec<_> = Endpoint::ALL
            .into_iter()
            .filter(|e| e.is_mutating())
            .collect();
        assert_eq!(mutating.len(), 5);
        assert!(!Endpoint::OrderSearch.is_mutating());
    }
}
