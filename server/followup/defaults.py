"""The ready-made journeys and templates every room starts with (editable in the console)."""

from __future__ import annotations

from typing import Any

JOURNEYS: list[dict[str, Any]] = [
    {
        "key": "unpaid-reminder",
        "name": "Clicked buy but did not pay · 点了购买未付款",
        "entry": "product.buy",
        "key_by": "product_id",
        "goal": "order.paid",
        "steps": [
            {"wait": {"minutes": 30}},
            {"send": {"channel": "auto", "template": "unpaid-reminder", "stale_minutes": 720}},
        ],
    },
    {
        "key": "unpaid-order",
        "name": "Order placed but not paid · 下单未付款",
        "entry": "order.placed",
        "key_by": "order_id",
        "goal": "order.paid",
        "steps": [
            {"wait": {"minutes": 30}},
            # Set "coupon" to a code the shop honours to add an incentive to the reminder.
            {"send": {"channel": "auto", "template": "unpaid-order", "stale_minutes": 24 * 60}},
        ],
    },
    {
        "key": "coupon-expiring",
        "name": "Claimed a deal, not redeemed · 领了优惠未使用",
        "entry": "discount.claim",
        "key_by": "discount_id",
        "goal": "coupon.redeemed",
        "steps": [
            {"wait": {"minutes": 10}},
            {"send": {"channel": "auto", "template": "coupon-expiring", "stale_minutes": 60}},
        ],
    },
    {
        "key": "payment-thanks",
        "name": "Thanks for your order · 付款感谢",
        "entry": "order.paid",
        "key_by": "order_id",
        "steps": [{"send": {"channel": "auto", "template": "payment-thanks", "transactional": True}}],
    },
    {
        "key": "shipped",
        "name": "Order shipped · 发货通知",
        "entry": "order.shipped",
        "key_by": "order_id",
        "steps": [{"send": {"channel": "auto", "template": "shipped", "transactional": True}}],
    },
    {
        "key": "review-invite",
        "name": "Delivered, then a review invitation · 签收后邀请评价",
        "entry": "order.delivered",
        "key_by": "order_id",
        "goal": "order.reviewed",
        "steps": [
            {"send": {"channel": "auto", "template": "delivered", "transactional": True}},
            {"wait": {"minutes": 3 * 24 * 60}},
            {"wait": {"until": "10:00"}},
            {
                "send": {
                    "channel": "auto",
                    "template": "review-invite",
                    "coupon": "THANKS10",
                    "stale_minutes": 3 * 24 * 60,
                }
            },
        ],
    },
    {
        "key": "refund-care",
        "name": "Refund care · 退款关怀",
        "entry": "order.refunded",
        "key_by": "order_id",
        "steps": [
            {"wait": {"minutes": 60}},
            {"send": {"channel": "auto", "template": "refund-care", "transactional": True}},
        ],
    },
    {
        "key": "prize-unclaimed",
        "name": "Won a draw, prize not claimed · 中奖未领奖",
        "entry": "draw.won",
        "goal": "draw.claimed",
        "steps": [
            {"wait": {"minutes": 10}},
            {"send": {"channel": "inapp", "template": "prize-unclaimed", "transactional": True}},
        ],
    },
]

# (key, locale) -> (subject, body). Jinja2, sandboxed; variables in docs/followup.md#templates.
TEMPLATES: dict[tuple[str, str], tuple[str, str]] = {
    ("unpaid-reminder", "en"): (
        "{{ product.name }} is still waiting for you",
        "Hi {{ contact.name or 'there' }}, you were about to buy {{ product.name }} "
        "({{ product.price }}) in {{ room.title }}."
        "{% if coupon %} Use code {{ coupon }} at checkout.{% endif %}"
        "\nFinish your order: {{ product.url }}",
    ),
    ("unpaid-reminder", "zh-CN"): (
        "{{ product.name }} 还在等你",
        "{{ contact.name or '你好' }}，你在「{{ room.title }}」直播间看中的 "
        "{{ product.name }}（{{ product.price }}）还没有付款。"
        "{% if coupon %}结账时使用优惠码 {{ coupon }}。{% endif %}\n继续购买：{{ product.url }}",
    ),
    ("unpaid-order", "en"): (
        "Your order {{ order_id }} is waiting for payment",
        "Your order {{ order_id }}{% if product %} for {{ product.name }}{% endif %} is reserved but not "
        "paid yet.{% if coupon %} Use code {{ coupon }} for a little extra off.{% endif %}"
        "{% if product %}\nPay now: {{ product.url }}{% endif %}",
    ),
    ("unpaid-order", "zh-CN"): (
        "订单 {{ order_id }} 待付款",
        "你的订单 {{ order_id }}{% if product %}（{{ product.name }}）{% endif %}已保留，还没有付款。"
        "{% if coupon %}使用优惠码 {{ coupon }} 再享优惠。{% endif %}"
        "{% if product %}\n立即付款：{{ product.url }}{% endif %}",
    ),
    ("coupon-expiring", "en"): (
        "Your deal on {{ product.name }} is about to expire",
        "Your coupon {{ coupon }} for {{ product.name }} holds your unit only a little longer."
        "\nCheck out now: {{ product.url }}",
    ),
    ("coupon-expiring", "zh-CN"): (
        "{{ product.name }} 的优惠即将失效",
        "你领取的 {{ product.name }} 优惠码 {{ coupon }} 即将过期，名额不再保留。"
        "\n立即结账：{{ product.url }}",
    ),
    ("payment-thanks", "en"): (
        "Thank you for your order {{ order_id }}",
        "Thank you! We received your payment for order {{ order_id }}. We will tell you when it ships.",
    ),
    ("payment-thanks", "zh-CN"): (
        "感谢你的订单 {{ order_id }}",
        "感谢购买！订单 {{ order_id }} 已付款成功，发货后我们会通知你。",
    ),
    ("shipped", "en"): ("Order {{ order_id }} has shipped", "Good news: order {{ order_id }} is on its way."),
    ("shipped", "zh-CN"): (
        "订单 {{ order_id }} 已发货",
        "好消息：你的订单 {{ order_id }} 已发货，正在路上。",
    ),
    ("delivered", "en"): (
        "Order {{ order_id }} was delivered",
        "Order {{ order_id }} was delivered. Enjoy!",
    ),
    ("delivered", "zh-CN"): ("订单 {{ order_id }} 已送达", "订单 {{ order_id }} 已送达，祝你使用愉快！"),
    ("review-invite", "en"): (
        "How do you like it? A coupon for your review",
        "Tell us how you like your order {{ order_id }}: leave a review and get {{ coupon }} "
        "off your next purchase.",
    ),
    ("review-invite", "zh-CN"): (
        "用得怎么样？评价送优惠券",
        "订单 {{ order_id }} 用得还满意吗？留下评价即可获得下次购物优惠券 {{ coupon }}。",
    ),
    ("refund-care", "en"): (
        "About your refund for {{ order_id }}",
        "We are sorry the order {{ order_id }} did not work out. Your refund is on its way; "
        "reply to this message if we can help.",
    ),
    ("refund-care", "zh-CN"): (
        "关于订单 {{ order_id }} 的退款",
        "很抱歉订单 {{ order_id }} 没能让你满意，退款正在处理中。如需帮助，请直接回复。",
    ),
    ("prize-unclaimed", "en"): (
        "You won! Claim your prize",
        "You won a prize in {{ room.title }}. Open the room and leave your details to claim it.",
    ),
    ("prize-unclaimed", "zh-CN"): (
        "恭喜中奖！请领取奖品",
        "你在「{{ room.title }}」直播间中奖了，打开直播间填写信息即可领奖。",
    ),
    ("confirm-email", "en"): (
        "Confirm your email address",
        "Please confirm that you want to receive messages from {{ room.title }}: {{ confirm_url }}"
        "\nIf this was not you, ignore this email.",
    ),
    ("confirm-email", "zh-CN"): (
        "请确认你的邮箱地址",
        "请确认你愿意接收「{{ room.title }}」的消息：{{ confirm_url }}\n如果不是你本人操作，请忽略此邮件。",
    ),
    ("post-stream", "en"): (
        "Thanks for watching {{ room.title }}",
        "Thanks for watching {{ room.title }}! The deals are still on for a short while."
        "{% if coupon %} Your code: {{ coupon }}.{% endif %}",
    ),
    ("post-stream", "zh-CN"): (
        "感谢观看「{{ room.title }}」",
        "感谢观看「{{ room.title }}」！直播优惠还会保留一小段时间。"
        "{% if coupon %}你的优惠码：{{ coupon }}。{% endif %}",
    ),
    # A go-live reminder (预约直播): the viewer asked to be told (server/studio/reminders.py).
    ("room-live", "en"): (
        "{{ room.title }} is live now",
        "{{ room.title }} is live now — tap to watch: {{ room.url }}",
    ),
    ("room-live", "zh-CN"): (
        "「{{ room.title }}」正在直播",
        "你预约的「{{ room.title }}」开播了，点击观看：{{ room.url }}",
    ),
    ("holiday", "en"): (
        "Season's greetings from {{ room.title }}",
        "Happy holidays, {{ contact.name or 'friend' }}! Thank you for being with us.",
    ),
    ("holiday", "zh-CN"): (
        "「{{ room.title }}」节日问候",
        "{{ contact.name or '朋友' }}，节日快乐！感谢一路相伴。",
    ),
}
