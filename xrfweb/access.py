"""Who may see what: the one place access is decided, one helper per object type.

Staff see everything. Others see projects they own or collaborate on, and what lies inside them.
Asking for something you may not see answers 404, exactly as if it did not exist, so ids leak
nothing. Model management (train, upload, approve, retire) is staff-only: 403 for others.
"""
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404

from xrfweb.jobs.models import Job
from xrfweb.projects.models import Dataset, Project
from xrfweb.registry.models import EnhancementModel


def projects_for_user(user):
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(Q(owner=user) | Q(collaborators=user)).distinct()


def datasets_for_user(user):
    if user.is_staff:
        return Dataset.objects.all()
    return Dataset.objects.filter(project__in=projects_for_user(user))


def jobs_for_user(user):
    """Enhancement jobs of visible projects; training jobs are staff business."""
    if user.is_staff:
        return Job.objects.all()
    return Job.objects.filter(project__in=projects_for_user(user))


def models_for_user(user):
    """Staff see every model; users see the approved ones (the ones they may run)."""
    if user.is_staff:
        return EnhancementModel.objects.all()
    return EnhancementModel.objects.filter(status=EnhancementModel.Status.APPROVED)


def _get(queryset, object_id):
    try:
        return queryset.get(id=int(object_id))
    except (queryset.model.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404(f"No such {queryset.model._meta.verbose_name}") from None


def get_project_for_user(user, project_id) -> Project:
    return _get(projects_for_user(user), project_id)


def get_dataset_for_user(user, dataset_id) -> Dataset:
    return _get(datasets_for_user(user).select_related("project"), dataset_id)


def get_job_for_user(user, job_id) -> Job:
    return _get(jobs_for_user(user).select_related("dataset", "model", "project"), job_id)


def get_model_for_user(user, model_id) -> EnhancementModel:
    """A model a user may run, or one that made a job they can see: a retired model stays
    readable for the provenance of those results (its page says it is retired)."""
    if user.is_staff:
        return _get(EnhancementModel.objects.all(), model_id)
    used = jobs_for_user(user).values("model_id")
    return _get(EnhancementModel.objects.filter(
        Q(status=EnhancementModel.Status.APPROVED) | Q(id__in=used)), model_id)


def require_staff(user, doing: str = "manage models") -> None:
    """Model management (and attaching measured probes) is for staff; others are told so (403),
    not shown a missing page."""
    if not (user.is_authenticated and user.is_staff):
        raise PermissionDenied(f"Only staff can {doing}.")


def can_manage_project(user, project: Project) -> bool:
    """Adding collaborators is the owner's (or staff's) call, not a collaborator's."""
    return user.is_staff or project.owner_id == user.id
