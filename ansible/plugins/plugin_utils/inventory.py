# -*- coding: utf-8 -*-
# Copyright (c) 2025, hactl contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The play's inventory as Ansible resolved it, in the JSON shape of
``ansible-inventory --list``, for ``hactl -i -`` on stdin.

Groups, their direct hosts and their children come from Ansible's
inventory; each host's variables from ``hostvars``, so whatever Ansible
merged (group_vars/ and host_vars/ files, vault-encrypted values, dynamic
inventory plugins, extra vars) reaches hactl templated and decrypted.
Only the variables hactl reads are sent: every ``hactl_*`` variable, the
connection variables, and ``inventory_file`` (which tells hactl the
inventory's path: relative ``{file: ...}`` secrets and the lab of the
inventory resolve as for the file itself).
"""

from __future__ import annotations

from collections.abc import Mapping

# The connection variables hactl reads (README: "How hactl talks to hosts").
CONNECTION_VARS = (
    'ansible_host',
    'ansible_port',
    'ansible_user',
    'ansible_ssh_private_key_file',
    'ansible_become',
    'ansible_ssh_common_args',
)

INVENTORY_FILE = 'inventory_file'

# Where hactl reads a VRRP password; their values are masked in results.
SECRET_VARS = ('hactl_auth_pass',)


def wanted(name):
    """Is ``name`` a variable hactl reads?"""
    return name.startswith('hactl_') or name in CONNECTION_VARS or name == INVENTORY_FILE


def plain(value):
    """A templated value as plain JSON data. ``str()`` of a vaulted value
    is its plaintext (ansible-core's EncryptedString, and the older
    AnsibleVaultEncryptedUnicode, both decrypt on use)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, Mapping):
        return dict((str(k), plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def inventory_json(groups, hostvars):
    """The ``ansible-inventory --list`` document.

    ``groups`` maps group names to objects with ``hosts`` (objects with a
    ``name``) and ``child_groups`` (objects with a ``name``), as Ansible's
    ``InventoryManager.groups`` does; ``hostvars`` maps host names to
    their variables, templated on access (Ansible's ``hostvars``).
    """
    out = {}
    host_names = []
    for name, group in groups.items():
        entry = {}
        members = [h.name for h in group.hosts]
        for h in members:
            if h not in host_names:
                host_names.append(h)
        if name != 'all' and members:
            entry['hosts'] = members
        children = [c.name for c in group.child_groups]
        if children:
            entry['children'] = children
        if entry:
            out[name] = entry
    meta = {}
    for host in host_names:
        variables = hostvars[host]
        meta[host] = dict((k, plain(variables[k])) for k in variables if wanted(k))
    out['_meta'] = dict(hostvars=meta)
    return out


def secrets(document):
    """Every secret string in the document, to be masked in results."""
    found = set()
    for variables in document.get('_meta', {}).get('hostvars', {}).values():
        for name in SECRET_VARS:
            value = variables.get(name)
            if isinstance(value, str) and value:
                found.add(value)
    return found
