"""Sign-in page and API token endpoint, throttled (throttle.py): a locked user name and address
gets 429 and the reason instead of the usual "wrong password"."""
from django.contrib.auth import views as auth_views
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from xrfweb.accounts import throttle


class LoginView(auth_views.LoginView):
    def post(self, request, *args, **kwargs):
        if throttle.locked(request.POST.get("username"), request):
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, throttle.MESSAGE)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)


class ObtainToken(ObtainAuthToken):
    def post(self, request, *args, **kwargs):
        if throttle.locked(request.data.get("username"), request._request):
            return Response({"error": throttle.MESSAGE}, status=429)
        return super().post(request, *args, **kwargs)


obtain_token = ObtainToken.as_view()
