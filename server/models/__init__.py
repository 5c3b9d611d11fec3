"""Persistence: Beanie documents, one per collection, with their indexes."""

from server.models.account_token import AccountToken, MailQuota
from server.models.client_app import ClientApp
from server.models.counter import Counter
from server.models.display import BoardSettings, Display
from server.models.login_attempt import LoginFailureWindow
from server.models.menu import MenuItem
from server.models.order import Order, OrderItem
from server.models.push_subscription import PushDelivery, PushSubscription
from server.models.refresh_token import RefreshToken
from server.models.store import Store
from server.models.stream_ticket import StreamTicket
from server.models.user import User
from server.models.webhook import WebhookDelivery, WebhookEndpoint

DOCUMENT_MODELS = [User, Store, MenuItem, Order, RefreshToken, Counter, ClientApp, LoginFailureWindow, StreamTicket,
                   PushSubscription, PushDelivery, WebhookEndpoint, WebhookDelivery, AccountToken, MailQuota,
                   Display, BoardSettings]

__all__ = ["DOCUMENT_MODELS", "BoardSettings", "Display", "AccountToken", "MailQuota", "ClientApp", "Counter", "LoginFailureWindow", "MenuItem", "Order", "OrderItem",
           "PushDelivery", "PushSubscription", "RefreshToken", "Store", "StreamTicket", "User", "WebhookDelivery", "WebhookEndpoint"]
