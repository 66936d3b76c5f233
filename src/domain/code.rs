//! The response codes of the published API, shared by replies and merchant callbacks.

/// The published response codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Success,
    Unauthorized,
    Failure,
    MissingParameter,
    ConnectionTimeout,
    SomethingWentWrong,
    Pending,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Success => "0x0200",
            Code::Unauthorized => "0x0201",
            Code::Failure => "0x0202",
            Code::MissingParameter => "0x0203",
            Code::ConnectionTimeout => "0x0204",
            Code::SomethingWentWrong => "0x0205",
            Code::Pending => "0x0206",
        }
    }

    pub fn status_word(self) -> &'static str {
        match self {
            Code::Success => "SUCCESS",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Failure => "FAILURE",
            Code::MissingParameter => "MISSING_PARAMETER",
            Code::ConnectionTimeout => "CONNECTION_TIMEOUT",
            Code::SomethingWentWrong => "SOMETHING_WENT_WRONG",
            Code::Pending => "PENDING",
        }
    }
}
