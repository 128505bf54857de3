"""E-mail through Django's mail backend (``EMAIL_*`` settings, from the environment)."""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from notifications.channels import ChannelError, Message
from notifications.models import split_list


def send(message: Message, route: Any, secret: Mapping[str, str]) -> str:
    recipients = split_list(route.target)
    if not recipients:
        raise ChannelError("the route names no e-mail address", permanent=True)
    prefix = getattr(settings, "BC_NOTIFY_EMAIL_SUBJECT_PREFIX", "[bcservice] ")
    mail = EmailMessage(
        subject=f"{prefix}{message.title}"[:250],
        body=message.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        headers={"X-BC-Event": str(message.event_id), "X-BC-Kind": message.kind},
    )
    try:
        # EMAIL_TIMEOUT bounds the SMTP conversation (the worker must not hang on a mail server).
        mail.connection = get_connection(fail_silently=False)
        sent = mail.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused:
        raise ChannelError("the mail server refused every recipient", permanent=True) from None
    except smtplib.SMTPAuthenticationError:
        raise ChannelError("the mail server refused the login (EMAIL_HOST_USER)") from None
    except smtplib.SMTPResponseException as exc:
        raise ChannelError(f"mail server answered {exc.smtp_code}") from None
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise ChannelError(f"mail server unreachable ({type(exc).__name__})") from None
    if not sent:
        raise ChannelError("the mail backend sent nothing")
    return f"e-mail accepted for {len(recipients)} recipient(s)"
