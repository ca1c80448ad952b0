from django.contrib.auth import views as auth_views
from django.http import HttpResponse

from appliance.signals import login_refusal


class LoginView(auth_views.LoginView):
    """Django's login, django-axes counting its failures; a right password may still be
    refused by another app's rule (`login_refusal`: during a switchover, say)."""

    redirect_authenticated_user = True

    def form_valid(self, form) -> HttpResponse:
        for _receiver, refusal in login_refusal.send(
            sender=None, request=self.request, user=form.get_user()
        ):
            if refusal is not None:
                return refusal
        return super().form_valid(form)
