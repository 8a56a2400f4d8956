"""Unit tests of app.services.users: the account rules, without HTTP."""

import logging

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from app.core.roles import Role
from app.core.security import verify_password
from app.crud import user_crud
from app.models import Item, User
from app.schemas.user import PasswordChange, UserCreate, UserUpdateAdmin, UserUpdateMe
from app.services import users as user_service
from app.services.login_budget import LoginBudgets
from tests.factories import DEFAULT_PASSWORD, make_item, make_user

FIRST_ADMIN_EMAIL = "root@example.com"
FIRST_ADMIN_PASSWORD = "first-admin-pass-1"


def new_user(**overrides: str) -> UserCreate:
    fields = {"email": "ada@example.com", "username": "ada_l", "password": "correct-horse-7"}
    fields.update(overrides)
    return UserCreate.model_validate(fields)


def count_users(session: Session, **where: object) -> int:
    return session.scalar(select(func.count()).select_from(User).filter_by(**where)) or 0


def reload(session: Session, user_id: int) -> User | None:
    """The row as the database has it, once the service's pending changes are written."""
    session.flush()
    session.expire_all()
    return session.get(User, user_id)


@pytest.fixture
def no_uniqueness_precheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """A racing request: the friendly pre-check sees nothing, the unique indexes decide."""
    monkeypatch.setattr(user_service, "_ensure_unique", lambda *_args, **_kwargs: None)


# --- sign_up ------------------------------------------------------------------------------------


def test_sign_up_stores_a_bcrypt_hash_not_the_password(session: Session) -> None:
    user = user_service.sign_up(session, user_in=new_user(password="correct-horse-7"))

    assert user.hashed_password != "correct-horse-7"
    assert user.hashed_password.startswith("$2")
    assert verify_password("correct-horse-7", user.hashed_password)


def test_sign_up_creates_an_active_user_with_role_user(session: Session) -> None:
    user = user_service.sign_up(session, user_in=new_user())

    assert user.id is not None
    assert user.role == Role.USER
    assert user.is_active is True
    assert count_users(session, email="ada@example.com") == 1


def test_sign_up_stores_the_email_lower_cased(session: Session) -> None:
    user = user_service.sign_up(session, user_in=new_user(email="Ada@EXAMPLE.com"))

    assert user.email == "ada@example.com"


def test_sign_up_with_a_taken_email_raises_conflict(session: Session) -> None:
    make_user(session, email="ada@example.com")

    with pytest.raises(ConflictError):
        user_service.sign_up(session, user_in=new_user(email="ADA@example.com"))


def test_sign_up_with_a_taken_username_in_another_case_raises_conflict(session: Session) -> None:
    make_user(session, username="Ada_L")

    with pytest.raises(ConflictError):
        user_service.sign_up(session, user_in=new_user(username="ada_l"))


@pytest.mark.usefixtures("no_uniqueness_precheck")
def test_sign_up_racing_duplicate_email_integrity_error_becomes_conflict(
    session: Session,
) -> None:
    make_user(session, email="ada@example.com", username="first")

    with pytest.raises(ConflictError) as raised:
        user_service.sign_up(session, user_in=new_user(username="second"))

    assert "already exists" in raised.value.detail


@pytest.mark.usefixtures("no_uniqueness_precheck")
def test_sign_up_racing_duplicate_username_integrity_error_becomes_conflict(
    session: Session,
) -> None:
    make_user(session, email="first@example.com", username="Ada_L")

    with pytest.raises(ConflictError):
        user_service.sign_up(session, user_in=new_user(email="second@example.com"))


# --- get_user -----------------------------------------------------------------------------------


def test_get_user_lets_a_user_read_itself(session: Session) -> None:
    user = make_user(session)

    assert user_service.get_user(session, viewer=user, user_id=user.id) is user


def test_get_user_refuses_a_non_admin_reading_another(session: Session) -> None:
    user, other = make_user(session), make_user(session)

    with pytest.raises(PermissionDeniedError):
        user_service.get_user(session, viewer=user, user_id=other.id)


def test_get_user_of_a_missing_id_as_admin_is_not_found(session: Session) -> None:
    admin = make_user(session, role=Role.ADMIN)

    with pytest.raises(NotFoundError):
        user_service.get_user(session, viewer=admin, user_id=admin.id + 1000)


# --- update_me / change_password ----------------------------------------------------------------


def test_update_me_to_another_users_username_raises_conflict(
    session: Session, login_budgets: LoginBudgets
) -> None:
    user = make_user(session)
    other = make_user(session, username="Taken_Name")

    with pytest.raises(ConflictError):
        user_service.update_me(
            session,
            budgets=login_budgets,
            user=user,
            user_in=UserUpdateMe(username=other.username.lower()),
            client_address="203.0.113.7",
        )


def test_change_password_stores_the_new_hash_and_revokes_tokens(
    session: Session, login_budgets: LoginBudgets
) -> None:
    user = make_user(session)
    key = user.token_key

    user_service.change_password(
        session,
        budgets=login_budgets,
        user=user,
        change=PasswordChange(current_password=DEFAULT_PASSWORD, new_password="new-secret-99"),
        client_address="203.0.113.7",
    )

    assert verify_password("new-secret-99", user.hashed_password)
    assert user.token_key != key


def test_change_password_with_a_wrong_current_password_raises_invalid_input(
    session: Session, login_budgets: LoginBudgets
) -> None:
    user = make_user(session)

    with pytest.raises(InvalidInputError) as raised:
        user_service.change_password(
            session,
            budgets=login_budgets,
            user=user,
            change=PasswordChange(current_password="wrong-pass-1", new_password="new-secret-99"),
            client_address="203.0.113.7",
        )

    assert raised.value.loc == ("body", "current_password")
    assert verify_password(DEFAULT_PASSWORD, user.hashed_password)


# --- update_user --------------------------------------------------------------------------------


def test_update_user_refuses_an_admin_demoting_itself(session: Session) -> None:
    admin = make_user(session, role=Role.ADMIN)
    make_user(session, role=Role.ADMIN)

    with pytest.raises(ConflictError):
        user_service.update_user(
            session, actor=admin, user=admin, user_in=UserUpdateAdmin(role=Role.USER)
        )

    assert admin.role == Role.ADMIN


def test_update_user_refuses_an_admin_deactivating_itself(session: Session) -> None:
    admin = make_user(session, role=Role.ADMIN)
    make_user(session, role=Role.ADMIN)

    with pytest.raises(ConflictError):
        user_service.update_user(
            session, actor=admin, user=admin, user_in=UserUpdateAdmin(is_active=False)
        )

    assert admin.is_active is True


def test_update_user_lets_an_admin_change_its_own_profile(session: Session) -> None:
    admin = make_user(session, role=Role.ADMIN)

    updated = user_service.update_user(
        session,
        actor=admin,
        user=admin,
        user_in=UserUpdateAdmin(full_name="Root", role=Role.ADMIN, is_active=True),
    )

    assert updated.full_name == "Root"
    assert updated.role == Role.ADMIN


def test_update_user_demotes_another_admin_when_one_remains(session: Session) -> None:
    actor = make_user(session, role=Role.ADMIN)
    target = make_user(session, role=Role.ADMIN)

    user_service.update_user(
        session, actor=actor, user=target, user_in=UserUpdateAdmin(role=Role.USER)
    )

    stored = reload(session, target.id)
    assert stored is not None
    assert stored.role == Role.USER


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"role": Role.USER}, id="demote"),
        pytest.param({"is_active": False}, id="deactivate"),
    ],
)
def test_update_user_refuses_to_remove_the_last_active_admin(
    session: Session, change: dict[str, object]
) -> None:
    # The actor is no longer an active admin (e.g. demoted concurrently): the target is the last.
    actor = make_user(session, role=Role.ADMIN, is_active=False)
    last = make_user(session, role=Role.ADMIN)

    with pytest.raises(ConflictError):
        user_service.update_user(
            session, actor=actor, user=last, user_in=UserUpdateAdmin.model_validate(change)
        )

    stored = reload(session, last.id)
    assert stored is not None
    assert (stored.role, stored.is_active) == (Role.ADMIN, True)


def test_update_user_does_not_count_inactive_admins_as_remaining(session: Session) -> None:
    actor = make_user(session, role=Role.USER)
    make_user(session, role=Role.ADMIN, is_active=False)
    last = make_user(session, role=Role.ADMIN)

    with pytest.raises(ConflictError):
        user_service.update_user(
            session, actor=actor, user=last, user_in=UserUpdateAdmin(role=Role.USER)
        )


def test_update_user_demotes_an_inactive_admin_freely(session: Session) -> None:
    actor = make_user(session, role=Role.USER)
    make_user(session, role=Role.ADMIN)
    inactive = make_user(session, role=Role.ADMIN, is_active=False)

    user_service.update_user(
        session, actor=actor, user=inactive, user_in=UserUpdateAdmin(role=Role.USER)
    )

    assert inactive.role == Role.USER


def test_update_user_sets_the_password_and_revokes_tokens(session: Session) -> None:
    admin = make_user(session, role=Role.ADMIN)
    user = make_user(session)
    key = user.token_key

    user_service.update_user(
        session, actor=admin, user=user, user_in=UserUpdateAdmin(password="reset-pass-77")
    )

    assert verify_password("reset-pass-77", user.hashed_password)
    assert not verify_password(DEFAULT_PASSWORD, user.hashed_password)
    assert user.token_key != key


def test_update_user_without_a_password_keeps_tokens_valid(session: Session) -> None:
    admin = make_user(session, role=Role.ADMIN)
    user = make_user(session)
    key = user.token_key

    user_service.update_user(
        session, actor=admin, user=user, user_in=UserUpdateAdmin(full_name="Renamed")
    )

    assert user.token_key == key
    assert verify_password(DEFAULT_PASSWORD, user.hashed_password)


def test_update_user_to_a_taken_email_raises_conflict(session: Session) -> None:
    admin = make_user(session, role=Role.ADMIN)
    user, other = make_user(session), make_user(session)

    with pytest.raises(ConflictError):
        user_service.update_user(
            session, actor=admin, user=user, user_in=UserUpdateAdmin(email=other.email)
        )


@pytest.mark.usefixtures("no_uniqueness_precheck")
def test_update_user_racing_duplicate_integrity_error_becomes_conflict(session: Session) -> None:
    admin = make_user(session, role=Role.ADMIN)
    user, other = make_user(session), make_user(session)

    with pytest.raises(ConflictError):
        user_service.update_user(
            session, actor=admin, user=user, user_in=UserUpdateAdmin(email=other.email)
        )


# --- delete_user --------------------------------------------------------------------------------


def test_delete_user_removes_the_user_and_their_items(session: Session) -> None:
    admin = make_user(session, role=Role.ADMIN)
    user, other = make_user(session), make_user(session)
    make_item(session, owner=user)
    make_item(session, owner=user)
    kept = make_item(session, owner=other)
    user_id = user.id

    user_service.delete_user(session, actor=admin, user=user)

    assert count_users(session, id=user_id) == 0
    assert session.scalars(select(Item.id)).all() == [kept.id]


def test_delete_user_refuses_an_admin_deleting_itself(session: Session) -> None:
    admin = make_user(session, role=Role.ADMIN)
    make_user(session, role=Role.ADMIN)

    with pytest.raises(ConflictError):
        user_service.delete_user(session, actor=admin, user=admin)

    assert count_users(session, id=admin.id) == 1


def test_delete_user_deletes_another_admin_when_one_remains(session: Session) -> None:
    actor = make_user(session, role=Role.ADMIN)
    target = make_user(session, role=Role.ADMIN)
    target_id = target.id

    user_service.delete_user(session, actor=actor, user=target)

    assert count_users(session, id=target_id) == 0


def test_delete_user_refuses_to_remove_the_last_active_admin(session: Session) -> None:
    actor = make_user(session, role=Role.ADMIN, is_active=False)
    last = make_user(session, role=Role.ADMIN)

    with pytest.raises(ConflictError):
        user_service.delete_user(session, actor=actor, user=last)

    assert count_users(session, id=last.id) == 1


def test_delete_user_deletes_an_inactive_admin_freely(session: Session) -> None:
    actor = make_user(session, role=Role.USER)
    make_user(session, role=Role.ADMIN)
    inactive = make_user(session, role=Role.ADMIN, is_active=False)
    inactive_id = inactive.id

    user_service.delete_user(session, actor=actor, user=inactive)

    assert count_users(session, id=inactive_id) == 0


# --- ensure_first_superuser ---------------------------------------------------------------------


def test_ensure_first_superuser_creates_an_active_admin(session: Session) -> None:
    admin = user_service.ensure_first_superuser(
        session, email=FIRST_ADMIN_EMAIL, password=FIRST_ADMIN_PASSWORD
    )

    assert admin is not None
    stored = user_crud.get_by_email(session, email=FIRST_ADMIN_EMAIL)
    assert stored is admin
    assert (stored.role, stored.is_active) == (Role.ADMIN, True)
    assert verify_password(FIRST_ADMIN_PASSWORD, stored.hashed_password)


def test_ensure_first_superuser_derives_the_username_from_the_email(session: Session) -> None:
    admin = user_service.ensure_first_superuser(
        session, email="ops.team+x@example.com", password=FIRST_ADMIN_PASSWORD
    )

    assert admin is not None
    assert admin.username == "ops_team_x"


def test_ensure_first_superuser_is_idempotent(session: Session) -> None:
    user_service.ensure_first_superuser(
        session, email=FIRST_ADMIN_EMAIL, password=FIRST_ADMIN_PASSWORD
    )

    second = user_service.ensure_first_superuser(
        session, email=FIRST_ADMIN_EMAIL, password="another-pass-2"
    )

    assert second is None
    assert count_users(session) == 1
    stored = user_crud.get_by_email(session, email=FIRST_ADMIN_EMAIL)
    assert stored is not None
    assert verify_password(FIRST_ADMIN_PASSWORD, stored.hashed_password)


def test_ensure_first_superuser_leaves_an_existing_user_untouched(session: Session) -> None:
    existing = make_user(session, email=FIRST_ADMIN_EMAIL, role=Role.USER)
    hashed, version = existing.hashed_password, existing.version

    result = user_service.ensure_first_superuser(
        session, email=FIRST_ADMIN_EMAIL, password=FIRST_ADMIN_PASSWORD
    )

    assert result is None
    stored = reload(session, existing.id)
    assert stored is not None
    assert stored.role == Role.USER
    assert stored.hashed_password == hashed
    assert stored.version == version
    assert count_users(session) == 1


def test_ensure_first_superuser_warns_when_the_user_exists(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    make_user(session, email=FIRST_ADMIN_EMAIL)

    with caplog.at_level(logging.WARNING, logger=user_service.__name__):
        user_service.ensure_first_superuser(
            session, email=FIRST_ADMIN_EMAIL, password=FIRST_ADMIN_PASSWORD
        )

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].name == user_service.__name__
    assert FIRST_ADMIN_EMAIL in warnings[0].getMessage()
    assert FIRST_ADMIN_PASSWORD not in caplog.text


def test_ensure_first_superuser_finding_the_admin_in_charge_is_no_warning(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    make_user(session, email=FIRST_ADMIN_EMAIL, role=Role.ADMIN)

    with caplog.at_level(logging.INFO, logger=user_service.__name__):
        user_service.ensure_first_superuser(
            session, email=FIRST_ADMIN_EMAIL, password=FIRST_ADMIN_PASSWORD
        )

    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "already exists" in caplog.records[0].getMessage()


def test_ensure_first_superuser_picks_a_free_username_when_the_derived_one_is_taken(
    session: Session,
) -> None:
    make_user(session, username="Root")
    make_user(session, username="root_2")

    admin = user_service.ensure_first_superuser(
        session, email=FIRST_ADMIN_EMAIL, password=FIRST_ADMIN_PASSWORD
    )

    assert admin is not None
    assert admin.username == "root_3"
    assert admin.role == Role.ADMIN


def test_ensure_first_superuser_pads_a_too_short_local_part(session: Session) -> None:
    admin = user_service.ensure_first_superuser(
        session, email="al@example.com", password=FIRST_ADMIN_PASSWORD
    )

    assert admin is not None
    assert admin.username == "admin"


def test_ensure_first_superuser_losing_a_race_steps_back(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    rival = make_user(session, email=FIRST_ADMIN_EMAIL, role=Role.ADMIN)
    # Another worker created the admin after this one looked: every lookup by email misses.
    monkeypatch.setattr(user_crud, "get_by_email", lambda *_args, **_kwargs: None)

    result = user_service.ensure_first_superuser(
        session, email=FIRST_ADMIN_EMAIL, password=FIRST_ADMIN_PASSWORD
    )

    assert result is None
    assert count_users(session) == 1
    assert count_users(session, id=rival.id) == 1
