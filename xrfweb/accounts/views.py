"""Sign-in page and API token endpoint, with lockouts (lockout.py): a locked address or user
name and address gets 429 and the reason instead of the usual "wrong password"."""
from django.contrib.auth import views as auth_views
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from xrfweb.accounts import lockout


class LoginView(auth_views.LoginView):
    def post(self, request, *args, **kwargs):
        if lockout.locked(request, request.POST.get("username")):
            return lockout.locked_out(request)
        return super().post(request, *args, **kwargs)


class ObtainToken(ObtainAuthToken):
    def post(self, request, *args, **kwargs):
        if lockout.locked(request._request, request.data.get("username")):
            return Response({"error": lockout.message()}, status=429)
        return super().post(request, *args, **kwargs)


obtain_token = ObtainToken.as_view()
