from oauth2_provider.oauth2_validators import OAuth2Validator


class ClaimsValidator(OAuth2Validator):
    """Adds the claims Custos reads: profile and e-mail, ``groups`` (with the ``groups`` scope),
    and how the user signed in: ``amr`` (RFC 8176) and, when set, ``acr``."""

    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "groups": "groups", "amr": "openid", "acr": "openid"}

    def get_additional_claims(self, request):
        user = request.user
        profile = getattr(user, "idp_profile", None)
        second_factor = bool(profile and profile.second_factor)
        claims = {
            "preferred_username": user.username,
            "name": user.get_full_name(),
            "given_name": user.first_name,
            "family_name": user.last_name,
            "email": user.email,
            "email_verified": True,
            "groups": sorted(user.groups.values_list("name", flat=True)),
            "amr": ["pwd", "otp"] if second_factor else ["pwd"],
        }
        if profile and profile.acr:
            claims["acr"] = profile.acr
        return claims
