# -*- coding: utf-8 -*-
# Copyright (c) 2025, hactl contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The play inventory as hactl's stdin JSON, built from stand-ins of
Ansible's groups and hostvars (the real ones are exercised by the playbook
test, tests/ansible.rs)."""

from __future__ import annotations

from ansible_collections.hactl.vrrp.plugins.plugin_utils import inventory


class Named(object):
    def __init__(self, name, hosts=(), child_groups=()):
        self.name = name
        self.hosts = [Named(h) for h in hosts]
        self.child_groups = [Named(c) for c in child_groups]


class Vaulted(object):
    """Like ansible-core's EncryptedString: str() is the plaintext."""

    def __str__(self):
        return 's3cret'


class TemplatingVars(dict):
    """Like HostVarsVars: values are templated on access, and a variable
    hactl does not read is never touched."""

    def __getitem__(self, key):
        value = dict.__getitem__(self, key)
        if value == 'BOOM':
            raise AssertionError('%s templated' % key)
        return value


GROUPS = dict(
    all=Named('all', child_groups=['ungrouped', 'hactl_pairs']),
    ungrouped=Named('ungrouped'),
    hactl_pairs=Named('hactl_pairs', child_groups=['web_lb']),
    web_lb=Named('web_lb', hosts=['lb02', 'lb01']),
)

HOSTVARS = dict(
    lb01=TemplatingVars(ansible_host='10.0.0.11', hactl_auth_pass=Vaulted(), ansible_port=22,
                        hactl_checks={'z': {'weight': -10}, 'a': {'weight': -20}},
                        inventory_file='/srv/lab.yaml', unrelated='BOOM', ansible_become=False),
    lb02=TemplatingVars(ansible_host='10.0.0.12', hactl_instances=[{'name': 'www', 'vips': ('10.0.0.100/24',)}]),
)


def test_groups_children_and_the_variables_hactl_reads():
    doc = inventory.inventory_json(GROUPS, HOSTVARS)
    assert doc['all'] == {'children': ['ungrouped', 'hactl_pairs']}
    assert 'ungrouped' not in doc
    assert doc['hactl_pairs'] == {'children': ['web_lb']}
    assert doc['web_lb'] == {'hosts': ['lb02', 'lb01']}
    lb01 = doc['_meta']['hostvars']['lb01']
    assert lb01 == {
        'ansible_host': '10.0.0.11',
        'hactl_auth_pass': 's3cret',
        'ansible_port': 22,
        'hactl_checks': {'z': {'weight': -10}, 'a': {'weight': -20}},
        'inventory_file': '/srv/lab.yaml',
        'ansible_become': False,
    }
    assert list(lb01['hactl_checks']) == ['z', 'a'], 'mappings keep their order'
    assert doc['_meta']['hostvars']['lb02']['hactl_instances'] == [{'name': 'www', 'vips': ['10.0.0.100/24']}]


def test_secrets_are_the_auth_passwords():
    doc = inventory.inventory_json(GROUPS, HOSTVARS)
    assert inventory.secrets(doc) == {'s3cret'}
