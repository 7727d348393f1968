"""Every exception keybox-ivr raises on purpose, in one place.

The call flow decides what a caller hears by the class of the error, never by its text::

    IvrError
    ├── SettingsError                bad configuration; start-up stops with one line
    ├── KimVoiceError                anything the KimVoice client raises
    │   ├── InvalidParameterError    a parameter outside the seed's ranges; nothing was sent
    │   ├── InvalidInputError        the service's generic 400 (no ApiError body)
    │   ├── AuthenticationError      log-on refused, or a 401 that a fresh token did not cure
    │   ├── ApiError                 the service refused the operation (ApiError body)
    │   │   ├── NotAuthorizedError   2001-2003: the key holder may not have codes
    │   │   └── MaintenanceError     9001 (also an UnavailableError)
    │   └── UnavailableError         the caller should hear `system-unavailable`
    │       ├── DeadlineExceededError    the call's deadline passed
    │       ├── BadResponseError         a body that is not the promised JSON
    │       └── CircuitOpenError         not asked: KimVoice kept failing, the breaker is open
    ├── TtsError                     a TTS engine or sox could not make a sound
    ├── StoreError                   the store cannot keep what the line must keep (fail closed)
    ├── SignInThrottledError         the line is paced against guessing and this caller got no turn
    ├── SmsError                     Kimoby, the code by text message
    │   ├── SmsUnavailableError      not reached, 429/5xx after the retries: nothing was sent
    │   ├── SmsRejectedError         Kimoby refused the request (4xx): its status and message
    │   │   └── SmsCredentialsError  401/403: the API key and secret (also a SettingsError)
    │   ├── SmsRecipientError        no customer, no cell phone, or unsubscribed: no text can go
    │   └── SmsInputError            a text or reference we will not send (also a ValueError); nothing was sent
    ├── NetCodeError                 Codelocks Connect, lock NetCodes
    │   ├── NetCodeUnavailableError  not reached, 500/502, a bad body: no NetCode this time
    │   ├── NetCodeRejectedError     Codelocks refused the request (400/404): its status and message
    │   │   └── NetCodeKeyRefusedError   a 403 not about the quota: the API key (also a SettingsError)
    │   ├── QuotaExhaustedError      the Codelocks quota, or our monthly budget, is used up
    │   └── NetCodeNotAllowedError   the lock directory does not allow this member on this lock
    ├── OutboundError                outbound jobs and the platforms that place their calls
    │   ├── JobInputError            a job request breaks a rule (HTTP 422); nothing was stored
    │   ├── JobConflictError         an idempotency key reused with another request (HTTP 409)
    │   ├── JobNotFoundError         no job has that id (HTTP 404)
    │   └── PlatformError            a platform (Asterisk AMI, ICTCore, Kazoo) failed
    │       ├── PlatformUnavailableError  not reached, or a 5xx: no call was placed, try again later
    │       ├── PlatformRejectedError     the platform refused the call's data: failed, not retried
    │       │   └── KazooRejectedError    Kazoo's crossbar refused a request (4xx): its status, error, message
    │       └── AmiError                  the Manager connection: login refused, no answer in time
    └── ChannelError                 the telephony side of a call, whatever the transport
        ├── ChannelHangupError       the caller hung up (or the channel died)
        └── ChannelProtocolError     the transport broke its protocol or refused a command
            ├── AgiProtocolError     a reply that breaks the AGI protocol, or a command AGI refused
            └── AriError             ARI refused a request or did not answer in time

The flow catches only the transport-neutral `ChannelError`, `ChannelHangupError` and
`ChannelProtocolError`; the transport-specific ones are for the transports and their tests.

Messages never carry a PIN, a shackle code, a secret, a token or a whole code.
"""

from __future__ import annotations

from enum import IntEnum


class IvrError(Exception):
    """The base of every error this package raises on purpose."""


class SettingsError(IvrError):
    """A setting has a value it does not accept. The message is one line naming the variable."""


class KimVoiceError(IvrError):
    """Anything that went wrong talking to KimVoice."""


class InvalidParameterError(KimVoiceError, ValueError):
    """A parameter is outside the seed's ranges or patterns; no request was sent."""


class InvalidInputError(KimVoiceError):
    """KimVoice answered 400 without an ApiError body: it found a parameter malformed."""


class AuthenticationError(KimVoiceError):
    """KimVoice refused our client id and secret, or kept refusing a fresh token."""


class UnavailableError(KimVoiceError):
    """KimVoice could not be used for this call: timeout, 5xx, refused connection, bad body."""


class DeadlineExceededError(UnavailableError):
    """The call's deadline passed before KimVoice answered."""


class BadResponseError(UnavailableError):
    """KimVoice answered with a body that is not the JSON model the contract promises."""


class CircuitOpenError(UnavailableError):
    """Nothing was sent: most of KimVoice's recent answers were failures, and the client's
    circuit breaker refuses requests for a while (`ivr.backends.kimvoice.CircuitBreaker`)."""


class ErrorCode(IntEnum):
    """The ApiError codes of the wire contract."""

    PIN_MISMATCH = 1001
    KEY_NOT_FOUND = 1002
    NON_PAYMENT = 2001
    KEY_NOT_ASSIGNED = 2002
    KEY_HOLDER_SUSPENDED = 2003
    NOT_VALIDATED = 2004
    BOX_NOT_FOUND = 3001
    SHACKLE_MISMATCH = 3002
    MAINTENANCE = 9001


class ApiError(KimVoiceError):
    """KimVoice refused the operation and said why in an ApiError body."""

    def __init__(
        self,
        method: str,
        status: int,
        error_code: int,
        message: str = "",
        user_message: str | None = None,
    ) -> None:
        self.method = method
        self.status = status
        self.error_code = error_code
        self.message = message
        self.user_message = user_message
        super().__init__(f"KimVoice {method} refused with ApiError {error_code} (HTTP {status}): {message}")

    @property
    def code(self) -> ErrorCode | int:
        """The error code as an `ErrorCode` where the contract knows it."""
        try:
            return ErrorCode(self.error_code)
        except ValueError:
            return self.error_code


class NotAuthorizedError(ApiError):
    """2001-2003: the key holder may not receive codes; `user_message` may say why."""


class MaintenanceError(ApiError, UnavailableError):
    """9001: KimVoice is down for maintenance."""


class TtsError(IvrError):
    """A TTS engine, or sox, could not make a sound (the message says how to fix it)."""


class StoreError(IvrError):
    """The store could not read or write: the caller hears `system-unavailable`, never a way past
    a safeguard that could not do its job."""


class SignInThrottledError(IvrError):
    """Too many wrong PINs on the whole line: sign-ins are paced and this one got no turn in time."""


class SmsError(IvrError):
    """Anything that went wrong sending a code by text message through Kimoby."""


class SmsUnavailableError(SmsError):
    """Kimoby could not be reached, or kept answering 429/5xx through the retries: nothing was sent."""


class SmsRejectedError(SmsError):
    """Kimoby refused the request with a 4xx. `status` is the HTTP status, `message` Kimoby's own
    (printable and bounded)."""

    def __init__(self, text: str, status: int, message: str = "") -> None:
        super().__init__(text)
        self.status, self.message = status, message


class SmsCredentialsError(SmsRejectedError, SettingsError):
    """Kimoby refused the API key and secret (401/403). A `SettingsError` too: the CLI stops with
    its one line, while the call flow, catching `SmsError`, offers the menu again."""


class SmsRecipientError(SmsError):
    """No text can go to this key holder: no such customer, no cell phone, or unsubscribed."""


class SmsInputError(SmsError, ValueError):
    """A text or a reference outside Kimoby's bounds (empty, a body over 1,600 characters); nothing was sent."""


class NetCodeError(IvrError):
    """Anything that went wrong asking Codelocks Connect for a NetCode."""


class NetCodeUnavailableError(NetCodeError):
    """Codelocks could not be reached, answered 500/502, or a body that is not its model."""


class NetCodeRejectedError(NetCodeError):
    """Codelocks refused the request (400, 404, a 403 that is not about the quota). `status` is
    the HTTP status, `message` Codelocks' own (printable and bounded)."""

    def __init__(self, text: str, status: int, message: str = "") -> None:
        super().__init__(text)
        self.status, self.message = status, message


class NetCodeKeyRefusedError(NetCodeRejectedError, SettingsError):
    """Codelocks answered 403 without a word of the quota: "missing or invalid authentication key"
    in its guide. A setting to fix (IVR_CODELOCKS_API_KEY), and for a caller no NetCode this time."""


class QuotaExhaustedError(NetCodeError):
    """The Codelocks quota (a 403 saying so) or the service's own monthly budget is used up."""


class NetCodeNotAllowedError(NetCodeError):
    """The lock directory names the members allowed on this lock, and the caller's is not one:
    nothing was asked of Codelocks."""


class OutboundError(IvrError):
    """Outbound jobs and the platforms that place their calls."""


class JobInputError(OutboundError, ValueError):
    """A job request breaks a rule. `field` names it; nothing was stored."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule


class JobConflictError(OutboundError):
    """An idempotency key already names a job made from another request."""


class JobNotFoundError(OutboundError, LookupError):
    """No job has that id."""


class PlatformError(OutboundError):
    """An outbound platform failed."""


class PlatformUnavailableError(PlatformError):
    """The platform could not be reached, or answered a server error: no call was placed, so the
    job waits and tries again without counting an attempt."""


class PlatformRejectedError(PlatformError):
    """The platform refused the call's data (a number it will not dial, ICTCore's 412): the
    attempt is `failed` and not retried."""


class KazooRejectedError(PlatformRejectedError):
    """Kazoo's crossbar refused a request with a 4xx error envelope.

    `status` is the HTTP status, `error` and `message` Kazoo's own (`"404"`, `"bad_identifier"`),
    printable and bounded: a caller can tell a device already deleted from bad data without
    reading the text.
    """

    def __init__(self, text: str, status: int, error: str = "", message: str = "") -> None:
        super().__init__(text)
        self.status, self.error, self.message = status, error, message


class AmiError(PlatformError):
    """The Asterisk Manager connection: login refused, an action without an answer in time, or
    the connection lost."""


class ChannelError(IvrError):
    """Something on the telephony side of a call (FastAGI, ARI, or a later transport)."""


class ChannelHangupError(ChannelError):
    """The caller hung up or the channel died: the flow stops and calls nothing more."""


class ChannelProtocolError(ChannelError):
    """The transport broke its protocol, refused a command or did not answer: the call cannot go on."""


class AgiProtocolError(ChannelProtocolError):
    """Asterisk sent something the AGI protocol does not allow, or refused a command (510/520).

    `reply` is the refusal (an `ivr.transports.agi.AgiReply`) when there was one.
    """

    def __init__(self, message: str, reply: object | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class AriError(ChannelProtocolError):
    """An ARI request failed: refused (`status` is the HTTP status), or no answer (`status` None).

    A channel that is gone (404, or 409 "not in a Stasis application") is a
    `ChannelHangupError` instead.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
