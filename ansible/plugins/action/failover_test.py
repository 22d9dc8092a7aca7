# -*- coding: utf-8 -*-
# Copyright (c) 2025, hactl contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""hactl.vrrp.failover_test: `hactl failover-test` once, on the controller
(see plugin_utils/action.py). Drills break pairs on purpose, so check mode
skips the task."""

from __future__ import annotations

from ansible_collections.hactl.vrrp.plugins.plugin_utils.action import HactlAction


class ActionModule(HactlAction):
    MODULE = 'failover_test'
    _supports_check_mode = False
