#!/bin/sh
# SPDX-License-Identifier: MIT
# The line_server example, unattended: it serves clients of its own on loopback and
# checks every reply. Run from the build directory, as make check does.
exec ./examples/line_server --self-test
