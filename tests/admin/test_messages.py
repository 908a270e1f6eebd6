"""Every write ends with a message saying what happened or why not, and messages come from the server.

Messages travel in the session (SQLAdmin's flash), never in the URL: a link can
carry any text, so a page that printed `?message=` would print a forged one on
a trusted page.
"""

from __future__ import annotations

import html
import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.admin.conftest import ClientFactory, csrf_from, page_token
from tests.factories import make_category, make_product, make_tag, make_user

_TOAST = re.compile(r'<div class="toast-body">(.*?)</div>', re.DOTALL)
_VERSION = re.compile(r'name="_version" value="(\d+)"')


def toasts(page: str) -> list[str]:
    """The flash messages a page shows, as text."""
    return [html.unescape(text.strip()) for text in _TOAST.findall(page)]


async def next_page(client: httpx.AsyncClient, response: httpx.Response) -> str:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert "message" not in location
    return (await client.get(location)).text


async def delete(client: httpx.AsyncClient, path: str) -> httpx.Response:
    return await client.delete(path, headers={"X-CSRF-Token": await page_token(client)})


async def test_the_trash_never_prints_a_message_from_the_url(new_client: ClientFactory) -> None:
    auditor = await new_client(roles=["auditor"])
    page = await auditor.get("/admin/trash?message=Your+account+is+locked.+Call+0800+EVIL")
    assert page.status_code == 200
    assert "EVIL" not in page.text
    assert toasts(page.text) == []


async def test_a_restore_tells_the_next_page_what_happened(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    manager = await new_client(roles=["manager"])
    product = await make_product(session)
    await session.commit()
    assert (await delete(manager, f"/admin/product/delete?pks={product.id}")).status_code == 200
    trash = await manager.get("/admin/trash?model=product")  # shows, and so clears, the delete's message
    assert any("moved to the trash" in text for text in toasts(trash.text))
    restored = await manager.post(
        f"/admin/trash/product/{product.id}/restore",
        data={"csrf_token": csrf_from(trash.text)},
        headers={"Referer": "http://testserver/admin/trash?model=product"},
    )
    assert restored.headers["location"] == "/admin/trash?model=product"  # back to the filtered page
    page = await next_page(manager, restored)
    assert toasts(page) == [f"Product {product.id} was restored."]
    assert toasts((await manager.get("/admin/trash")).text) == []  # shown once


async def test_two_writes_before_a_page_show_both_messages(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    manager = await new_client(roles=["manager"])
    first, second = await make_tag(session), await make_tag(session)
    await session.commit()
    assert (await delete(manager, f"/admin/tag/delete?pks={first.id}")).status_code == 200
    assert (await delete(manager, f"/admin/tag/delete?pks={second.id}")).status_code == 200
    shown = toasts((await manager.get("/admin/tag/list")).text)
    assert [text.split("“")[1].split("”")[0] for text in shown] == [first.name, second.name]


async def test_a_refused_restore_says_why(new_client: ClientFactory, session: AsyncSession) -> None:
    manager = await new_client(roles=["manager"])
    old = await make_product(session, sku="MSG-CLASH")
    await session.commit()
    assert (await delete(manager, f"/admin/product/delete?pks={old.id}")).status_code == 200
    await make_product(session, sku="MSG-CLASH", category_id=old.category_id)
    await session.commit()
    response = await manager.post(
        f"/admin/trash/product/{old.id}/restore", data={"csrf_token": await page_token(manager)}
    )
    page = await next_page(manager, response)
    assert any("MSG-CLASH already exists" in text for text in toasts(page))
    assert "text-bg-danger" in page


async def test_create_and_save_say_what_happened(new_client: ClientFactory, session: AsyncSession) -> None:
    editor = await new_client(roles=["editor"])
    form = await editor.get("/admin/tag/create")
    created = await editor.post(
        "/admin/tag/create", data={"name": "msg-new-tag", "csrf_token": csrf_from(form.text), "save": "Save"}
    )
    assert toasts(await next_page(editor, created)) == ["Tag “msg-new-tag” was created."]

    tag = await make_tag(session, name="msg-old-tag")
    await session.commit()
    edit = await editor.get(f"/admin/tag/edit/{tag.id}")
    version = _VERSION.search(edit.text)
    data = {"name": "msg-renamed", "csrf_token": csrf_from(edit.text), "save": "Save"}
    if version:
        data["_version"] = version.group(1)
    saved = await editor.post(f"/admin/tag/edit/{tag.id}", data=data)
    assert toasts(await next_page(editor, saved)) == ["Tag “msg-renamed” was saved."]


async def test_a_delete_says_it_moved_to_the_trash(new_client: ClientFactory, session: AsyncSession) -> None:
    manager = await new_client(roles=["manager"])
    tags = [await make_tag(session) for _ in range(3)]
    await session.commit()
    one = await delete(manager, f"/admin/tag/delete?pks={tags[0].id}")
    assert one.status_code == 200
    assert toasts((await manager.get(one.text)).text) == [
        f"Tag “{tags[0].name}” was moved to the trash, where it can be restored."
    ]
    two = await delete(manager, f"/admin/tag/delete?pks={tags[1].id},{tags[2].id}")
    assert toasts((await manager.get(two.text)).text) == [
        "2 tags were moved to the trash, where they can be restored."
    ]


async def test_a_refused_delete_answers_with_the_reason(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    manager = await new_client(roles=["manager"])
    category = await make_category(session)
    await make_product(session, category_id=category.id)
    await session.commit()
    response = await delete(manager, f"/admin/category/delete?pks={category.id}")
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("text/plain")
    assert "product" in response.text.lower()  # says what is in the way
    assert toasts((await manager.get("/admin/category/list")).text) == []  # nothing claims success

    missing = await delete(manager, "/admin/category/delete?pks=999999999")
    assert missing.status_code == 404
    assert "No category 999999999 exists." in missing.text


async def test_a_bulk_action_counts_what_it_changed(new_client: ClientFactory, session: AsyncSession) -> None:
    editor = await new_client(roles=["editor"])
    first, second = await make_product(session), await make_product(session)
    await session.commit()
    token = await page_token(editor)
    path = f"/admin/product/action/mark-archived?pks={first.id},{second.id}"
    archived = await editor.post(path, headers={"X-CSRF-Token": token})
    assert toasts(await next_page(editor, archived)) == ["2 products were archived."]
    one = await editor.post(
        f"/admin/product/action/mark-active?pks={first.id}", headers={"X-CSRF-Token": token}
    )
    assert toasts(await next_page(editor, one)) == ["1 product was marked active."]


async def test_a_bulk_action_without_a_selection_says_so(new_client: ClientFactory) -> None:
    editor = await new_client(roles=["editor"])
    token = await page_token(editor)
    response = await editor.post(
        "/admin/product/action/mark-draft?pks=",
        headers={"X-CSRF-Token": token, "Referer": "http://testserver/admin/product/list?status=active"},
    )
    assert response.headers["location"] == "/admin/product/list?status=active"
    assert toasts(await next_page(editor, response)) == ["Select at least one product first."]


async def test_a_bulk_action_returns_only_to_its_own_list(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    editor = await new_client(roles=["editor"])
    product = await make_product(session)
    await session.commit()
    response = await editor.post(
        f"/admin/product/action/mark-draft?pks={product.id}",
        headers={
            "X-CSRF-Token": await page_token(editor),
            "Referer": "http://testserver/admin/user/list?x=1",
        },
    )
    assert response.headers["location"] == "http://testserver/admin/product/list"


async def test_a_purge_says_it_is_gone(new_client: ClientFactory, session: AsyncSession) -> None:
    root = await new_client(superuser=True)
    tag = await make_tag(session)
    await session.commit()
    assert (await delete(root, f"/admin/tag/delete?pks={tag.id}")).status_code == 200
    purged = await root.post(f"/admin/trash/tag/{tag.id}/purge", data={"csrf_token": await page_token(root)})
    assert f"Tag {tag.id} was purged: it is gone for good." in toasts(await next_page(root, purged))


async def test_setting_a_password_says_so(new_client: ClientFactory, session: AsyncSession) -> None:
    root = await new_client(superuser=True)
    user = await make_user(session, roles=["viewer"])
    await session.commit()
    form = await root.get(f"/admin/user/set-password/{user.id}")
    response = await root.post(
        f"/admin/user/set-password/{user.id}",
        data={
            "password": "a-brand-new-password-42",
            "password_confirm": "a-brand-new-password-42",
            "csrf_token": csrf_from(form.text),
        },
    )
    page = await next_page(root, response)
    assert f"The password of {user.username} was set. Their open sessions have ended." in toasts(page)
