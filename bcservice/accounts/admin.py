"""Identity in the Django admin: role mappings, identities (break-glass flag) and API tokens.

Every save goes through bcservice.accounts.services so it is validated and audited the same way
as from the command line. A new API token's value is shown once, on the page that follows its
creation (never through the messages framework, whose cookie would carry it), with no-store.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from simple_history.admin import SimpleHistoryAdmin

from bcservice.accounts import services
from bcservice.accounts.models import ApiToken, Identity, RoleMapping, validate_scope_for_role


class RoleMappingForm(forms.ModelForm):
    class Meta:
        model = RoleMapping
        fields = ("claim_value", "role", "resources", "resource_groups", "description")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        has_scope = bool(data.get("resources")) or bool(data.get("resource_groups"))
        try:
            validate_scope_for_role(data.get("role", ""), has_scope)
        except ValidationError as exc:
            raise ValidationError({"role": exc.messages}) from exc
        return data


@admin.register(RoleMapping)
class RoleMappingAdmin(SimpleHistoryAdmin):
    form = RoleMappingForm
    list_display = ("claim_value", "role", "scope", "description", "updated_at")
    list_filter = ("role",)
    search_fields = ("claim_value", "description")
    filter_horizontal = ("resources", "resource_groups")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("resources", "resource_groups")

    @admin.display(description="scope")
    def scope(self, obj: RoleMapping) -> str:
        names = [r.name for r in obj.resources.all()] + [g.name for g in obj.resource_groups.all()]
        return ", ".join(names) if names else "everything"

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.role_mapping_save(
            actor=request.user,
            mapping=obj,
            resources=form.cleaned_data.get("resources") or [],
            resource_groups=form.cleaned_data.get("resource_groups") or [],
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # role_mapping_save already set the scope (and audited it with the rest)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.role_mapping_delete(actor=request.user, mapping=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for mapping in queryset:
            services.role_mapping_delete(actor=request.user, mapping=mapping)


class IdentityForm(forms.ModelForm):
    class Meta:
        model = Identity
        fields = ("user", "breakglass")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        user = data.get("user") or getattr(self.instance, "user", None)
        source = self.instance.source if self.instance.pk else Identity.Source.LOCAL
        if (
            not self.instance.pk
            and user is not None
            and Identity.objects.filter(user=user).exists()
        ):
            raise ValidationError({"user": "This user already has an identity; edit that one."})
        if data.get("breakglass") and source == Identity.Source.OIDC:
            raise ValidationError(
                {"breakglass": "An OIDC account cannot be a break-glass account; use a local one."}
            )
        return data


@admin.register(Identity)
class IdentityAdmin(SimpleHistoryAdmin):
    form = IdentityForm
    list_display = ("user", "source", "breakglass", "last_oidc_login_at", "last_acr")
    list_filter = ("source", "breakglass")
    search_fields = ("user__username", "subject")
    readonly_fields = (
        "source",
        "issuer",
        "subject",
        "idp_groups",
        "last_oidc_login_at",
        "last_acr",
        "last_amr",
    )
    autocomplete_fields = ("user",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple:
        return self.readonly_fields + (("user",) if obj else ())

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of how someone logs in goes with the user, not on its own

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # IdentityForm already refused the invalid cases; the service audits the change.
        saved = services.identity_set_breakglass(
            actor=request.user, user=obj.user, breakglass=obj.breakglass
        )
        obj.pk = saved.pk


class ApiTokenAddForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ("user", "name", "expires_at")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "user",
        "prefix",
        "state",
        "created_at",
        "created_by",
        "expires_at",
        "last_used_at",
    )
    list_filter = ("revoked_at", "created_at")
    search_fields = ("name", "user__username", "prefix")
    list_select_related = ("user", "created_by")
    autocomplete_fields = ("user",)
    actions = ("revoke_selected",)
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "created_at",
        "created_by",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )

    @admin.display(description="state")
    def state(self, obj: ApiToken) -> str:
        if obj.revoked_at:
            return "revoked"
        return "active" if obj.is_active else "expired"

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple:
        return self.readonly_fields if obj else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the row is the record of what the token could do

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            return  # nothing is editable after creation
        token, value = services.api_token_create(
            actor=request.user,
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data.get("expires_at"),
        )
        obj.pk = token.pk
        obj.__dict__.update({k: v for k, v in token.__dict__.items() if not k.startswith("_")})
        request._bc_new_token_value = value

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: Any = None) -> Any:
        value = getattr(request, "_bc_new_token_value", None)
        if value is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            "admin/accounts/apitoken/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "token": obj,
                "value": value,
                "title": "API token created",
            },
        )
        add_never_cache_headers(response)  # the one page that shows the value: never cached
        return response

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            services.api_token_revoke(actor=request.user, token=token)
            count += 1
        self.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)
        return None


# DRF's plain-text tokens are no longer accepted (bcservice.auth.tokens); hide their admin so
# nobody creates one that would not work.
try:
    from rest_framework.authtoken.admin import TokenProxy

    admin.site.unregister(TokenProxy)
except (ImportError, admin.sites.NotRegistered):
    pass
