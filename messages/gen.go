// Package messages holds the protobuf messages of every qfleet flow (proto
// package qfleet.v1); env.proto, the env protocol (qfleet.env.v1), is
// generated into messages/envpb and python/env_pb2.py. Regenerate both with
// `make proto`, which pins the generators' versions.
package messages

//go:generate protoc --go_out=. --go_opt=paths=source_relative qfleet.proto
//go:generate protoc --go_out=. --go_opt=module=github.com/qfleet/qfleet/messages --python_out=../python env.proto
