# -*- coding: utf-8 -*-
# Copyright (c) 2025, hactl contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Drives plugins/module_utils/hactl.py through the cases of
test_hactl.yaml: a fake runner checks each hactl command line against the
expected one, in order, and answers with the recorded output; the result
must hold the expected keys and values."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.hactl.vrrp.plugins.module_utils import hactl

HERE = os.path.dirname(__file__)
FIXTURES = os.path.join(HERE, 'fixtures')

with open(os.path.join(HERE, 'test_hactl.yaml')) as f:
    CASES = yaml.safe_load(f)['test_cases']

INVENTORY_JSON = '{"_meta": {"hostvars": {}}}'


def _text(run, key):
    if key + '_file' in run:
        with open(os.path.join(FIXTURES, run[key + '_file'])) as f:
            return f.read()
    return run.get(key, '')


class Runner(object):
    """Answers the expected runs in order; fails on any other."""

    def __init__(self, runs):
        self.runs = list(runs)
        self.seen = []

    def __call__(self, argv, stdin):
        assert self.runs, 'unexpected hactl run: %s' % argv
        run = self.runs.pop(0)
        assert argv == run['command']
        assert (stdin is not None) == run.get('stdin', False), 'stdin of %s' % argv
        self.seen.append(argv)
        return run['rc'], _text(run, 'out'), _text(run, 'err')


def _params(case):
    """The input completed with the spec's defaults, as Ansible validates it."""
    spec = hactl.SPECS[case['module']]
    params = dict((name, option.get('default')) for name, option in spec.items())
    params.update(case['input'])
    return params


@pytest.mark.parametrize('case', CASES, ids=[c['id'] for c in CASES])
def test_case(case):
    runner = Runner(case['runs'])
    params = _params(case)
    stdin = None if params.get('inventory') else INVENTORY_JSON
    result = hactl.run(case['module'], params, 'hactl', runner, stdin=stdin,
                       check_mode=case.get('check_mode', False),
                       diff_mode=case.get('diff_mode', False))
    assert not runner.runs, 'hactl was not run as expected: %s left' % runner.runs
    for key, want in case.get('output', {}).items():
        assert key in result, '%s missing from %s' % (key, sorted(result))
        assert result[key] == want, key
    for key in case.get('absent', []):
        assert key not in result, key
    for host, lines in case.get('diff_contains', {}).items():
        entries = [d for d in result['diff'] if d['before_header'].startswith(host + ':')]
        assert len(entries) == 1, host
        before, after = entries[0]['before'], entries[0]['after']
        for line in lines:
            text = before if line.startswith('-') else after
            assert line[1:] in text.splitlines(), (host, line)
        assert 'labpass' not in before + after
    for i, want in enumerate(case.get('drills', [])):
        for key, value in want.items():
            assert result['drills'][i][key] == value, (i, key)


def test_every_module_has_a_spec_and_a_subcommand():
    assert sorted(hactl.SPECS) == sorted(hactl.SUBCOMMANDS)
    for spec in hactl.SPECS.values():
        assert spec['hactl_env'].get('no_log') is True


def test_error_lines_drop_the_prefix_and_other_lines():
    assert hactl.error_lines('error: a\nnoise\nerror: b\n') == ['a', 'b']
