//! How the core's own failures become the service's refusals: [`ServiceError`] (in
//! [`kurir_protocol::error`], shared with the web doors) from a store or an operator action.

pub use kurir_protocol::error::{ImportLineError, ServiceError, NOT_TAKEN_IN};

use crate::queue::operator::OperatorError;
use crate::store::StoreError;

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ServiceError::UnknownJob(id),
            other => {
                tracing::error!(error = %other, "the store failed a request");
                ServiceError::Store(other.to_string())
            }
        }
    }
}

impl From<OperatorError> for ServiceError {
    fn from(e: OperatorError) -> Self {
        match e {
            OperatorError::Store(s) => s.into(),
            OperatorError::NoJob(id) => ServiceError::UnknownJob(id),
            OperatorError::WrongState { id, state, hint } => {
                ServiceError::WrongState { id, state, hint }
            }
            OperatorError::NoReason => ServiceError::ReasonRequired,
            OperatorError::Io { what, source } => ServiceError::Io {
                what,
                detail: source.to_string(),
            },
        }
    }
}
