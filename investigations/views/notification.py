"""The notification centre: a person's own notifications, newest first; opening one marks it read."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.http import SignedInRequest

from .. import actions
from ..models import Notification

PAGE_SIZE = 30


@require_GET
def notification_list(request: SignedInRequest) -> HttpResponse:
    mine = Notification.objects.for_user(request.user)
    show = "unread" if request.GET.get("show") == "unread" else "all"
    listed = mine.unread() if show == "unread" else mine
    page = Paginator(listed, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "show": show, "unread_total": mine.unread().count(), "total": mine.count()}
    return render(request, "investigations/notification_list.html", context)


@require_GET
def notification_open(request: SignedInRequest, pk: int) -> HttpResponse:
    """Mark one of the user's own notifications read and follow its link (someone else's: 404)."""
    notification = Notification.objects.for_user(request.user).filter(pk=pk).first()
    if notification is None:
        raise Http404("No such notification.")
    actions.notifications_mark_read(actor=request.user, ids=[notification.pk])
    safe = notification.link.startswith("/") and url_has_allowed_host_and_scheme(notification.link, allowed_hosts=None)
    return redirect(notification.link if safe else "investigations:notification_list")


@require_POST
def notification_read_all(request: SignedInRequest) -> HttpResponse:
    marked = actions.notifications_mark_read(actor=request.user)
    messages.success(request, f"{marked} notification{'s' if marked != 1 else ''} marked read.")
    return redirect("investigations:notification_list")
