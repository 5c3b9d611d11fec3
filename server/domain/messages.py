"""Every client-facing error and status message, defined once.

Texts quoted from seeds 000, 001 and 003 (static/docs/contracts/API.md) must stay exactly as they are.
"""

# Authentication and authorisation (API.md, Identity and roles).
NO_TOKEN = "Access denied. No token provided."
INVALID_TOKEN = "Invalid token."
TOKEN_EXPIRED = "Token expired."
USER_NOT_FOUND = "Invalid token. User not found."
FORBIDDEN_ROLE = "You do not have permission to perform this action."
BAD_CREDENTIALS = "Invalid email or password."
EMAIL_TAKEN = "An account with this email already exists."
INVALID_REFRESH = "Invalid or expired refresh token."
REFRESH_REUSED = "Refresh token reuse detected. Please sign in again."
LOGGED_OUT = "Logged out."
ACCOUNT_DISABLED = "This account is disabled. Contact an administrator."
ADMIN_USER_NOT_FOUND = "User not found."
CANNOT_DISABLE_SELF = "You cannot disable your own account."
LAST_ADMIN = "This is the last active admin: enable or create another admin first."
ROLE_CHANGE_NOT_STAFF = "Only store employees and admins change role."
STAFF_SIGNUP_PENDING = ("Your store employee account is created. An admin must assign you to your store "
                        "before you can run it; until then you can sign in but not act for any store.")
PROFILE_UPDATED = "Profile updated successfully."
PROFILE_UPDATE_EMPTY = "Send at least one of: name, phoneNumber, registerNumber."
PROFILE_EMAIL_FIXED = "Your email cannot be changed here: it is where your password reset links go."
PROFILE_ROLE_FIXED = "Your role cannot be changed here: an admin changes roles."
PROFILE_REGISTER_NUMBER_STUDENTS = "registerNumber is only for students."
FIELD_NOT_PHONE = "{field} must be a phone number of 7 to 15 digits."
STREAM_TICKET_INVALID = "Invalid or expired stream ticket."
WS_AUTH_REQUIRED = "Send {\"type\": \"auth\", \"token\": \"<access token>\"} as the first frame."
WS_ALREADY_AUTHENTICATED = "This socket is already authenticated."

# WebSocket frames refused with a `bad_request` error frame (REALTIME.md, Server to client).
WS_FRAME_NOT_TEXT = "Frames must be JSON text."
WS_FRAME_NOT_OBJECT = "Frames must be JSON objects."
WS_FRAME_UNKNOWN = "Unknown frame type."
WS_TARGET_REQUIRED = "Give either orderIds or storeId."
WS_ORDER_IDS_INVALID = "orderIds must be a list of 1 to 100 order ids."
STORE_ID_INVALID = "storeId must be a store id."
UPI_LINK_INVALID = "link must be a upi://pay link of at most 512 characters."
RESET_LINK_INVALID = "This password reset link is invalid, used or expired. Ask for a new one."
VERIFY_LINK_INVALID = "This verification link is invalid, used or expired. Sign in and ask for a new one."
MAIL_REQUESTS_THROTTLED = "Too many emails asked for from this address. Try again in {minutes} min."
PASSWORD_RESET_SENT = "If an account exists for that email, a link to reset its password is on its way."
PASSWORD_RESET_DONE = "Your password is changed. Sign in with it; other devices were signed out."
EMAIL_VERIFIED = "Your email is verified."
VERIFICATION_SENT = "A verification link is on its way to your email."
EMAIL_ALREADY_VERIFIED = "Your email is already verified."
SCRAPES_TOO_FAST = "Metrics are rendered at most 20 times a second. Try again in {seconds} s."
QR_CODES_RATE_LIMITED = "Too many QR codes drawn for this address. Try again in {seconds} s."
WS_MINE_ALONE = "Give mine: true alone, without orderIds or storeId."
LOGIN_THROTTLED = "Too many failed sign-in attempts. Try again in {seconds} s."

# Request shape.
MALFORMED_JSON = "Malformed JSON body."
BODY_TOO_LARGE = "Request body too large."
NOT_FOUND = "Not found."
METHOD_NOT_ALLOWED = "Method not allowed."
INTERNAL_ERROR = "Internal server error."
SERVER_BUSY = "Server busy. Try again in {seconds} s."
DATABASE_UNAVAILABLE = "Service temporarily unavailable. Please retry."
STORAGE_UNAVAILABLE = "The server cannot save changes right now: its storage is full or read-only. Please retry later."
STORAGE_NOT_READY = "The database refuses writes: {reason}."

# Connection limits, answered by the HTTP protocol before any route (server/uvicorn_adapter/http_limits.py).
HEADERS_TOO_LARGE = "Request line and headers too large: at most {limit} bytes."
HEADERS_TIMEOUT = "Request headers not received within {seconds} s."
TOO_MANY_CONNECTIONS = "The server is at its limit of {limit} open connections; retry shortly."

# Field rules of request bodies (server/http/body_rules.py): `{field}` is the field's name, `{path}`
# its place in the body (`items[0].quantity`); query numbers (server/http/body.py); SSE resume.
FIELD_REQUIRED = "{field} is required."
FIELD_NOT_STRING = "{field} must be a string."
FIELD_TOO_LONG = "{field} must be at most {maximum} characters."
FIELD_NOT_CHOICE = "{field} must be one of: {choices}."
FIELD_NOT_BOOLEAN = "{field} must be true or false."
FIELD_REQUIRED_BOOLEAN = "{field} is required and must be true or false."
FIELD_NOT_WHOLE_NUMBER = "{path} must be a whole number."
FIELD_NOT_ARRAY = "{field} must be an array."
FIELD_TOO_MANY = "{field} must have at most {maximum} entries."
FIELD_NOT_OBJECT = "{path} must be an object."
FIELD_INVALID = "{path} is not valid."
FIELD_UNSAFE_CHARACTERS = "{field} must not contain control or bidirectional formatting characters."
FIELD_NOT_EMAIL = "{field} must be a valid email address."
PASSWORD_LENGTH = "password must be {minimum} to {maximum} characters."
PASSWORD_BLANK = "password must contain a character other than spaces."
OTP_NOT_ASCII = "otp must contain only printable ASCII characters."
QUERY_NOT_NUMBER = "{name} must be a whole number from {minimum} to {maximum}."
LAST_EVENT_ID_INVALID = "Last-Event-ID must be a whole number."

# Money (rupees at the JSON edge).
PRICE_NOT_NUMBER = "price must be a number."
PRICE_NOT_POSITIVE = "price must be greater than 0."
PRICE_DECIMALS = "price must have at most 2 decimals."
PRICE_TOO_LARGE = "price must be at most {maximum}."

# Stores and menu.
STORE_NOT_FOUND = "Store not found."
MENU_ITEM_NOT_FOUND = "Menu item not found."
STORE_REQUIRED_FOR_STAFF = "storeId is required for store employees."

# Checkout session.
CART_EMPTY = "Cart is empty. Add at least one item."
CART_ITEM_UNKNOWN = "Menu item {item_id} was not found."
CART_ITEM_OTHER_STORE = "Menu item {item_id} does not belong to this store."
CART_ITEM_UNAVAILABLE = "{name} is currently unavailable."
CART_STORE_INACTIVE = "This store is not accepting orders right now."
CART_QUANTITY = "Quantity must be between 1 and 50."
CART_DUPLICATE_ITEM = "Menu item {item_id} appears more than once in the cart."

# Orders (seed 001).
ORDER_PLACED = "Order placed. Complete payment and let the store verify before preparation."
ORDER_EXISTS = "Order already exists for this checkout session."
CHECKOUT_TOKEN_REQUIRED = "Checkout token is required."
CHECKOUT_INVALID = "Checkout session expired or invalid. Please retry payment."
TRANSACTION_ID_INVALID = "UPI transaction ID must be 8-40 alphanumeric characters when provided."
RESTRICTED = "Ordering is temporarily restricted due to repeated no-shows until {until}."
TRANSACTION_ID_TAKEN = (
    "This transaction ID is already linked to another order. Please check the ID and try again."
)
CART_CHANGED = "Cart details changed during payment. Please retry checkout with updated cart."

# Orders (seed 000 and API.md).
ORDER_NOT_FOUND = "Order not found."
ORDER_FORBIDDEN = "You are not authorized to view this order."
STATUS_CONFLICT = "Order status changed. Refresh and try again."
INVALID_TRANSITION = "Cannot move an order from {current} to {target}."
ACCEPT_NEEDS_COMMITMENT = "The customer must confirm commitment before the order can be accepted."
PAYMENT_ALREADY_FINAL = "Payment status is already {status}."
PAYMENT_UPDATED = "Payment status updated."
PAYMENT_WAITING_COMMITMENT = "Payment confirmed. Waiting for customer commitment before preparation."
PAYMENT_FAILED_CANCELLED = "Payment marked as failed. Order cancelled."
STATUS_UPDATED = "Order status updated."
ORDER_CANCELLED = "Order cancelled."
CANCEL_NOT_ALLOWED = "Only placed orders with pending payment can be cancelled."
OTP_INVALID = "Invalid or expired OTP."
OTP_LOCKED = "Too many wrong codes. Try again in {seconds} s."
OTP_VERIFIED = "OTP verified. Order picked up."
PICKUP_NOT_READY = "Only a ready order can be picked up."
PICKUP_NEEDS_PAYMENT = "Payment must be confirmed before the order is picked up."
MANUAL_PICKUP_CONFIRMED = "Pickup confirmed by staff without the code. Order picked up."
POLL_TOO_FAST = "Polling too frequently. Retry after {seconds} s."

# CampusBite's notification stream (/api/notifications/subscribe): (title, message) by order status.
CAMPUSBITE_STREAM_CONNECTED = "Notification stream connected."
CAMPUSBITE_NOTIFICATIONS = {
    "placed": ("Order Placed", "Your order has been placed. Pay the store and wait for it to be accepted."),
    "accepted": ("Order Accepted", "The store has accepted your order."),
    "processing": ("Order Being Prepared", "The store is now preparing your order. Hang tight!"),
    "ready": ("Order Ready for Pickup", "Your order is ready! Head to the store and show the OTP to collect it."),
    "picked_up": ("Order Collected", "You have collected your order. Enjoy your meal!"),
    "cancelled": ("Order Cancelled", "Your order has been cancelled."),
}
CAMPUSBITE_NOTIFICATION_DEFAULT = ("Order Update", "Your order status changed to {status}.")
CAMPUSBITE_STORE_NOTIFICATION = "Order {number}: {title}."

# Commitment (seed 003).
COMMITMENT_CONFIRMED = "Commitment confirmed. Your order will be processed."
COMMITMENT_ALREADY = "Commitment already confirmed for this order."
COMMITMENT_EXPIRED = "Commitment window has expired. Order has been cancelled."
COMMITMENT_NOT_REQUIRED = "This order does not require commitment confirmation."
COMMITMENT_FORBIDDEN = "You are not authorized to confirm commitment for this order."
COMMITMENT_NOT_OPEN = "This order can no longer be confirmed."
PAYMENT_NOT_OPEN = "Payment can only be updated before the order is picked up or cancelled."
PICKUP_NEEDS_OTP = "Pickup is completed by verifying the customer's OTP."

# The partner API (static/docs/contracts/PARTNER.md): its errors have no final period.
PARTNER_CLIENT_MISSING = "X-Client-ID header is required"
PARTNER_CLIENT_UNKNOWN = "Unknown or revoked client ID"
PARTNER_ORDER_NOT_FOUND = "Order not found"
PARTNER_ORDER_FORBIDDEN = "You do not have access to this order"
PARTNER_INTERNAL_ERROR = "Internal server error"
PARTNER_WAIT_INVALID = "wait must be a whole number from 1 to {maximum}"

# Real-time subscriptions refused (REALTIME.md, error frames; the same texts over SSE).
WATCH_TOO_MANY_ORDERS = "At most {maximum} orders per connection."
WATCH_ORDER_FORBIDDEN = "You are not allowed to watch this order."
WATCH_STORE_FORBIDDEN = "You are not allowed to watch this store."
WATCH_TOO_MANY_STREAMS = "At most {maximum} open sockets and event streams per account."
WATCH_SUBSCRIBES_TOO_FAST = "Too many subscribes from this account; subscribe again in a second."

# Query parameters of the listings (GET /api/orders, GET /api/admin/users).
ORDER_STATUS_FILTER_INVALID = "status must be a comma-separated list of: {choices}."
QUERY_NOT_CHOICE = "{name} must be one of: {choices}."
QUERY_TOO_LONG = "{name} must be at most {maximum} characters."

# The admin console and the kitchen's store controls (issue 11).
STORE_UPDATE_EMPTY = "Send at least one of: name, location, description, upiId, isActive."
MENU_ITEM_UPDATE_EMPTY = "Send at least one of: name, price, category, isAvailable."
CUSTOMER_NOT_FOUND = "Customer not found."
NO_SHOW_NOT_RECORDED = "This order has no recorded no-show to clear."
NO_SHOW_CLEARED = "No-show cleared."
CLIENT_NOT_FOUND = "Partner client not found."
CLIENT_REVOKED = "Partner client revoked."
# Partner webhooks (README, "Webhooks").
WEBHOOK_ENDPOINT_NOT_FOUND = "Webhook endpoint not found."
WEBHOOK_CLIENT_UNKNOWN = "Unknown or revoked partner client."
WEBHOOK_URL_INVALID = "url must be an http:// or https:// URL with a host, of at most {maximum} characters."
WEBHOOK_URL_NOT_HTTPS = "url must be https:// in production."
WEBHOOK_URL_UNRESOLVED = "url's host {host} does not resolve."
WEBHOOK_URL_REFUSED = ("url's host {host} resolves to a loopback, private, link-local, multicast or metadata "
                       "address; webhooks reach those only for hosts listed in WEBHOOK_ALLOWED_HOSTS.")
WEBHOOK_EVENTS_INVALID = "events must be a comma-separated list of {types}."
WEBHOOK_REPLAY_SCOPE = "Give exactly one of eventId, orderId or since (with an optional until)."
WEBHOOK_TIME_INVALID = "{field} must be an ISO 8601 date-time such as 2026-12-06T14:00:00Z."
WEBHOOK_REMOVED = "Webhook endpoint removed with its delivery log."
WEBHOOK_ROTATED = "Signing secret rotated: the old one also signs until its expiry. The new secret is shown once."
WEBHOOK_ENABLED = "Webhook endpoint enabled: its pending deliveries go out again."
WEBHOOK_REPLAYED = "{count} deliveries scheduled again."

# Web Push (issue 12): what a lock screen shows. Never the pickup code: a lock screen is public.
PUSH_ACCEPTED_TITLE = "Order {order_number} accepted"
PUSH_ACCEPTED_BODY = "{store_name} has your order and will start on it soon."
PUSH_READY_TITLE = "Order {order_number} is ready"
PUSH_READY_BODY = "Pick it up at {store_name}. Open the order for your pickup code."
PUSH_REMINDER_TITLE = "Order {order_number} is waiting for you"
PUSH_REMINDER_BODY = "Pick it up at {store_name} within {minutes} min, or it will be cancelled as a no-show."
PUSH_CANCELLED_TITLE = "Order {order_number} was cancelled"
PUSH_CANCELLED_BODY = {
    "payment_timeout": "The payment wasn't confirmed in time, so {store_name} cancelled it.",
    "payment_failed": "{store_name} couldn't confirm your payment, so the order was cancelled.",
    "commitment_timeout": "You didn't confirm you were coming in time, so {store_name} cancelled it.",
    "no_show_timeout": "It wasn't picked up in time, so {store_name} cancelled it.",
    "customer_cancelled": "You cancelled it.",
    "store_cancelled": "{store_name} cancelled it.",
}
PUSH_CANCELLED_FALLBACK = "{store_name} cancelled it."
STORE_PAUSED = "This store has paused new orders for a few minutes. Please try again shortly."
STORE_PACE_EMPTY = "Send delayMinutes, paused or itemsPerSlot."
STORE_CLOSED = "This store has closed for new orders. Please try again once it reopens."
CLOSES_AT_INVALID = "{field} must be a date and time with its time zone, e.g. 2030-01-02T18:30:00Z, or null to reopen."
CLOSES_AT_OUT_OF_RANGE = "{field} must be in the future and at most {hours} hours from now."
DELAY_MINUTES_INVALID = "{field} must be a whole number of minutes from 0 to {maximum}."
PUSH_ENDPOINT_NOT_ALLOWED = "endpoint must be the https address of a known push service."
PUSH_KEY_INVALID = "{path} must be a base64url {what}."
PUSH_KEY_NOT_ON_CURVE = "keys.p256dh must be a point on the P-256 curve (a browser's push key)."
PUSH_SUBSCRIPTION_NOT_FOUND = "Push subscription not found."
PUSH_SUBSCRIBED = "You will be notified about your orders on this device."
PUSH_UNSUBSCRIBED = "This device will no longer be notified."

# CampusBite's staff console (server/http/campusbite_console.py).
FORM_MALFORMED = "The form could not be read."
MENU_ITEM_ADDED = "Menu item added."
MENU_ITEM_UPDATED = "Menu item updated."
MENU_ITEM_DELETED = "Menu item deleted."
STORE_UPDATED = "Store updated."

# The kitchen at rush hour (issue 27): item marks, undoing a ready, order caps per slot.
ITEM_INDEX_INVALID = "This order has no item {index}."
ITEM_MARK_CLOSED = "Items can be struck only while the order is with the kitchen."
ITEM_MARKED = "Item marked."
READY_UNDO_NOT_READY = "Only a ready order can be put back to preparing; this one is {status}."
READY_UNDO_EXPIRED = ("Too late to undo: order {order_number} was marked ready more than {seconds} s ago. "
                      "Tell the customer at the counter instead.")
READY_UNDONE = "Order put back to preparing. The customer has been told it is not ready after all."
PUSH_READY_UNDONE_TITLE = "Order {order_number} is not ready after all"
PUSH_READY_UNDONE_BODY = "{store_name} marked it ready by mistake and needs a few more minutes. We'll tell you when it's ready."
ITEMS_PER_SLOT_INVALID = "{field} must be a whole number of items from 1 to {maximum}, or null for no cap."
CAP_WEIGHT_INVALID = "{field} must be a whole number from 1 to {maximum}."
SLOT_ORDER_TOO_LARGE = ("This order is larger than {store_name} takes in one 15-minute slot ({cap} items). "
                        "Please order fewer items.")
SLOTS_FULL = ("{store_name} is fully booked for the next {minutes} minutes. Please try again in a few minutes.")

# The pickup board and its display links, and the store's day in numbers (issue 27).
DISPLAY_NOT_FOUND = "Display link not found."
DISPLAY_KEY_INVALID = "This display link is not valid (it may have been revoked). Ask the store's staff for a new one."
REPORT_DATE_INVALID = "date must be a day as YYYY-MM-DD, such as 2026-12-06."
REPORT_FORMAT_INVALID = "format must be json, csv or svg."
BOARD_SETTINGS_EMPTY = "Send announce: true or false."
BOARD_STREAMS_PER_LINK = "At most {most} boards may be open with one display link. Close one, or make another link."
