# -*- coding: utf-8 -*-
# Copyright (c) 2025, hactl contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The action plugin every hactl.vrrp module is: it runs once per task on
the controller (``BYPASS_HOST_LOOP``: hactl fans out over SSH itself),
hands hactl the play's inventory as Ansible resolved it on stdin, runs
``hactl --json SUBCOMMAND`` and returns the report as the task result.

The argv never holds a secret (the inventory goes through stdin); every
``hactl_auth_pass`` value of the inventory and every ``hactl_env`` value
is masked in the result, as ``no_log`` masks a module's secrets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from ansible.errors import AnsibleError
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase

from ansible_collections.hactl.vrrp.plugins.module_utils import hactl
from ansible_collections.hactl.vrrp.plugins.plugin_utils import inventory as play_inventory


class HactlAction(ActionBase):
    """Subclasses set ``MODULE`` (a key of ``hactl.SPECS``); one that
    cannot run in check mode sets ``_supports_check_mode = False`` and is
    skipped there by Ansible."""

    BYPASS_HOST_LOOP = True
    TRANSFERS_FILES = False
    _requires_connection = False
    MODULE = None

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(HactlAction, self).run(tmp, task_vars)
        del tmp
        validation, params = self.validate_argument_spec(argument_spec=hactl.SPECS[self.MODULE])
        secrets = set(validation._no_log_values)
        check_mode = bool(self._task.check_mode)
        diff_mode = bool(self._task.diff)

        binary = params.get('hactl_path') or shutil.which('hactl')
        if not binary or not os.access(binary, os.X_OK):
            result.update(failed=True, msg=(
                'hactl not found: %s' % (
                    'hactl_path %s is not an executable file' % params['hactl_path']
                    if params.get('hactl_path') else 'no `hactl` on the PATH; install it or set hactl_path')))
            return result

        env = dict(os.environ)
        env.update(dict((str(k), str(v)) for k, v in (params.get('hactl_env') or {}).items()))
        env['NO_COLOR'] = '1'

        stdin = None
        if not params.get('inventory'):
            try:
                document = play_inventory.inventory_json(
                    task_vars['hostvars']._inventory.groups, task_vars['hostvars'])
            except (AnsibleError, KeyError, TypeError) as e:
                result.update(failed=True, msg='cannot read the play inventory: %s' % e)
                return result
            secrets |= play_inventory.secrets(document)
            stdin = json.dumps(document)
        if not params.get('limit') and task_vars.get('ansible_limit'):
            params['limit'] = task_vars['ansible_limit']

        def runner(argv, stdin):
            # Without an inventory to send, hactl's stdin is empty rather
            # than ansible-playbook's own.
            feed = dict(input=stdin) if stdin is not None else dict(stdin=subprocess.DEVNULL)
            try:
                done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False,
                                      **feed)
            except OSError as e:
                return 127, '', 'error: cannot run %s: %s' % (argv[0], e)
            return done.returncode, done.stdout, done.stderr

        result.update(hactl.run(self.MODULE, params, binary, runner, stdin=stdin,
                                check_mode=check_mode, diff_mode=diff_mode))
        return remove_values(result, secrets) if secrets else result
