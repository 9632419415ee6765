#!/usr/bin/env bats
# tests/ddict/multinode.bats: the dictionary over three nodes' local services and transport agents on one machine (file bootstrap).

bats_require_minimum_version 1.5.0

load ../multinode/nodes

@test "three nodes: 100,000 keys written on node 1 are read on node 2 with every byte checked" {
	skip "written in the next step"
}
