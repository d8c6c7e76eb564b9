#!/usr/bin/env python3
"""Wire-compatibility check of the Titus gateway against the UPSTREAM Titus protos.

1. Compares the compiled descriptors of the upstream protos with this project's protos
   (gateway/proto): every message, field (name, number, type, label, oneof, JSON name), enum value,
   service method and streaming flag of the four JobManagementService files must be identical.
2. Generates a Python gRPC client from the upstream protos and drives a running gateway with it:
   creates, finds, pages, updates, observes and kills jobs, and checks Titus's error codes.

Exits 1 on any mismatch, listing every failed check. Run through scripts/titus-wire-check.sh,
which starts an API server and a gateway.
"""

import argparse
import importlib
import json
import os
import queue
import sys
import threading
import time
import urllib.request
import uuid

FILES = [
    "netflix/titus/titus_job_api.proto",
    "netflix/titus/titus_base.proto",
    "netflix/titus/titus_containers.proto",
    "netflix/titus/titus_volumes.proto",
]
CALLER = "wire-check"
failures = []


def check(condition, what):
    if condition:
        print(f"  ok    {what}")
    else:
        print(f"  FAIL  {what}")
        failures.append(what)
    return condition


def protoc(args):
    import grpc_tools
    from grpc_tools import protoc as compiler

    # The well-known types ship with grpc_tools; `python -m grpc_tools.protoc` adds them itself.
    bundled = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    code = compiler.main(["protoc"] + args + ["-I", bundled])
    if code != 0:
        raise SystemExit(f"protoc {' '.join(args)} exited {code}")


def descriptor_table(include, out):
    from google.protobuf import descriptor_pb2

    protoc(["-I", include, "--include_imports", f"--descriptor_set_out={out}"] + FILES)
    files = descriptor_pb2.FileDescriptorSet()
    with open(out, "rb") as f:
        files.ParseFromString(f.read())
    table = {}

    def walk(prefix, messages, enums):
        for e in enums:
            table["enum " + prefix + e.name] = sorted((v.name, v.number) for v in e.value)
        for m in messages:
            name = prefix + m.name
            fields = sorted(
                (
                    f.name,
                    f.number,
                    f.type,
                    f.label,
                    f.type_name,
                    f.json_name,
                    f.oneof_index if f.HasField("oneof_index") else -1,
                )
                for f in m.field
            )
            table["message " + name] = fields + [("oneofs", [o.name for o in m.oneof_decl])]
            walk(name + ".", m.nested_type, m.enum_type)

    for f in files.file:
        if not f.name.startswith("netflix/"):
            continue
        walk(f.package + ".", f.message_type, f.enum_type)
        for service in f.service:
            table["service " + f.package + "." + service.name] = sorted(
                (m.name, m.input_type, m.output_type, m.client_streaming, m.server_streaming)
                for m in service.method
            )
    return table


def compare_descriptors(upstream, ours, work):
    print("descriptors: upstream vs gateway/proto")
    a = descriptor_table(upstream, os.path.join(work, "upstream.pb"))
    b = descriptor_table(ours, os.path.join(work, "ours.pb"))
    differing = [key for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]
    for key in differing:
        check(False, f"{key}: upstream {a.get(key)} != ours {b.get(key)}")
    if not differing:
        check(len(a) > 100, f"{len(a)} messages, enums and services identical")


def generate_client(upstream, out):
    os.makedirs(out, exist_ok=True)
    protoc(["-I", upstream, f"--python_out={out}", f"--grpc_python_out={out}"] + FILES)
    sys.path.insert(0, out)
    api = importlib.import_module("netflix.titus.titus_job_api_pb2")
    rpc = importlib.import_module("netflix.titus.titus_job_api_pb2_grpc")
    base = importlib.import_module("netflix.titus.titus_base_pb2")
    return api, rpc, base


def descriptor(api, base, app, service=None):
    d = api.JobDescriptor(
        owner=api.Owner(teamEmail="wire@example.com"),
        applicationName=app,
        container=api.Container(
            resources=api.ContainerResources(cpu=1.0, memoryMB=512, diskMB=10000, networkMbps=128),
            securityProfile=api.SecurityProfile(securityGroups=["sg-wire"], iamRole="wireRole"),
            image=api.Image(name="titus/busybox", tag="1"),
            entryPoint=["/bin/sh", "-c"],
            command=["sleep 1"],
            env={"WIRE": "1"},
        ),
        attributes={"origin": "wire-check"},
    )
    if service is None:
        d.batch.CopyFrom(
            api.BatchJobSpec(
                size=2,
                runtimeLimitSec=60,
                retryPolicy=base.RetryPolicy(immediate=base.RetryPolicy.Immediate(retries=1)),
            )
        )
    else:
        lo, want, hi = service
        d.service.CopyFrom(
            api.ServiceJobSpec(
                capacity=api.Capacity(min=lo, desired=want, max=hi),
                enabled=True,
                retryPolicy=base.RetryPolicy(delayed=base.RetryPolicy.Delayed(delayMs=1000, retries=0)),
            )
        )
    return d


class Observer:
    """Reads a server stream on a thread into a queue."""

    def __init__(self, call):
        self.call = call
        self.items = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for item in self.call:
                self.items.put(("item", item))
            self.items.put(("end", None))
        except Exception as e:  # grpc.RpcError, cancellation
            self.items.put(("error", e))

    def next(self, timeout=20):
        try:
            return self.items.get(timeout=timeout)
        except queue.Empty:
            return ("timeout", None)

    def until_snapshot_end(self):
        updates = []
        while True:
            kind, item = self.next()
            if kind != "item":
                return updates, False
            which = item.WhichOneof("Notification")
            if which == "snapshotEnd":
                return updates, True
            updates.append(item)


def drive(api, rpc, base, grpc_addr, rest_addr):
    import grpc
    from google.protobuf import wrappers_pb2

    md = [("x-titus-callerid", CALLER)]
    stub = rpc.JobManagementServiceStub(grpc.insecure_channel(grpc_addr))
    JobState = api.JobStatus.JobState

    print("create and find")
    batch_id = stub.CreateJob(descriptor(api, base, "wirebatch"), metadata=md).id
    check(str(uuid.UUID(batch_id)) == batch_id, f"CreateJob returns a UUID job id ({batch_id})")
    job = stub.FindJob(api.JobId(id=batch_id), metadata=md)
    check(job.id == batch_id, "FindJob returns the job")
    check(job.jobDescriptor.applicationName == "wirebatch", "applicationName round-trips")
    check(job.jobDescriptor.batch.size == 2, "batch.size round-trips")
    check(job.jobDescriptor.container.resources.memoryMB == 512, "container.resources.memoryMB round-trips")
    check(job.jobDescriptor.container.env["WIRE"] == "1", "container.env round-trips")
    check(job.jobDescriptor.attributes.get("titus.createdBy") == CALLER, "titus.createdBy is the caller id")
    check(job.jobDescriptor.attributes.get("origin") == "wire-check", "user attributes are kept")
    check(job.status.state == JobState.Accepted, "a new job is Accepted")
    check(job.status.timestamp > 0 and job.version.timestamp > 0, "status and version carry timestamps")
    check(job.jobDescriptor.container.resources.shmSizeMB == 64, "sanitization applied (shmSizeMB 0 -> 64)")

    service_id = stub.CreateJob(descriptor(api, base, "wireservice", (0, 1, 3)), metadata=md).id
    found = stub.FindJobs(
        api.JobQuery(page=base.Page(pageSize=10), filteringCriteria={"jobType": "SERVICE"}), metadata=md
    )
    check([j.id for j in found.items] == [service_id], "FindJobs filters by jobType")
    check(found.pagination.totalItems == 1 and not found.pagination.hasMore, "pagination counts the matches")
    seen, cursor = [], ""
    while True:
        page = stub.FindJobs(api.JobQuery(page=base.Page(pageSize=1, cursor=cursor)), metadata=md)
        seen += [j.id for j in page.items]
        if not page.pagination.hasMore:
            break
        cursor = page.pagination.cursor
    check(sorted(seen) == sorted([batch_id, service_id]), "cursor paging visits every job once")
    projected = stub.FindJobs(api.JobQuery(page=base.Page(pageSize=10), fields=["status.state"]), metadata=md)
    check(
        all(j.id and not j.HasField("jobDescriptor") for j in projected.items),
        "field projection keeps the id and the named fields",
    )
    tasks = stub.FindTasks(api.TaskQuery(page=base.Page(pageSize=10), filteringCriteria={"jobIds": batch_id}), metadata=md)
    check(tasks.pagination.currentPage.pageSize == 10, "FindTasks answers")

    print("update")
    stub.UpdateJobCapacity(api.JobCapacityUpdate(jobId=service_id, Capacity=api.Capacity(min=1, desired=2, max=4)), metadata=md)
    capacity = stub.FindJob(api.JobId(id=service_id), metadata=md).jobDescriptor.service.capacity
    check((capacity.min, capacity.desired, capacity.max) == (1, 2, 4), "UpdateJobCapacity (field 'Capacity')")
    stub.UpdateJobCapacityWithOptionalAttributes(
        api.JobCapacityUpdateWithOptionalAttributes(
            jobId=service_id,
            jobCapacityWithOptionalAttributes=api.JobCapacityWithOptionalAttributes(
                desired=wrappers_pb2.UInt32Value(value=3)
            ),
        ),
        metadata=md,
    )
    capacity = stub.FindJob(api.JobId(id=service_id), metadata=md).jobDescriptor.service.capacity
    check((capacity.min, capacity.desired, capacity.max) == (1, 3, 4), "UpdateJobCapacityWithOptionalAttributes (UInt32Value)")
    stub.UpdateJobStatus(api.JobStatusUpdate(id=service_id, enableStatus=False), metadata=md)
    check(not stub.FindJob(api.JobId(id=service_id), metadata=md).jobDescriptor.service.enabled, "UpdateJobStatus disables")
    stub.UpdateJobAttributes(api.JobAttributesUpdate(jobId=service_id, attributes={"k": "v"}), metadata=md)
    stub.DeleteJobAttributes(api.JobAttributesDeleteRequest(jobId=service_id, keys=["origin"]), metadata=md)
    attributes = stub.FindJob(api.JobId(id=service_id), metadata=md).jobDescriptor.attributes
    check(attributes.get("k") == "v" and "origin" not in attributes, "Update/DeleteJobAttributes")

    print("observe")
    observer = Observer(stub.ObserveJobs(api.ObserveJobsQuery(), metadata=md))
    snapshot, ended = observer.until_snapshot_end()
    ids = {u.jobUpdate.job.id for u in snapshot if u.WhichOneof("Notification") == "jobUpdate"}
    check(ended and {batch_id, service_id} <= ids, "ObserveJobs: snapshot of the jobs, then SnapshotEnd")
    third = stub.CreateJob(descriptor(api, base, "wirethird"), metadata=md).id
    # The system is live: updates of the other jobs and their tasks may come first.
    arrived, deadline = False, time.monotonic() + 20
    while not arrived and time.monotonic() < deadline:
        kind, item = observer.next()
        if kind != "item":
            break
        arrived = item.WhichOneof("Notification") == "jobUpdate" and item.jobUpdate.job.id == third
    check(arrived, "ObserveJobs: a new job arrives as a jobUpdate")
    observer.call.cancel()

    watcher = Observer(stub.ObserveJob(api.JobId(id=batch_id), metadata=md))
    snapshot, ended = watcher.until_snapshot_end()
    check(ended and snapshot and snapshot[0].jobUpdate.job.id == batch_id, "ObserveJob: the job, then SnapshotEnd")
    stub.KillJob(api.JobId(id=batch_id), metadata=md)
    states, completed = [], False
    while True:
        kind, item = watcher.next()
        if kind == "item":
            if item.WhichOneof("Notification") == "jobUpdate":
                states.append(item.jobUpdate.job.status.state)
        else:
            completed = kind == "end"
            break
    check(completed, "ObserveJob completes after the job finished")
    check(states and states[-1] == JobState.Finished, f"ObserveJob ends with the Finished update (states {states})")

    print("lifecycle")
    life = descriptor(api, base, "wirelife")
    # The simulated node runs each task for 1 s, then reports it finished (Titus's mock agent).
    life.attributes["titusParameter.mockVK.runTime"] = "delay=1s;status=StatusFinished"
    life_id = stub.CreateJob(life, metadata=md).id
    follower = Observer(stub.ObserveJob(api.JobId(id=life_id), metadata=md))
    _, ended = follower.until_snapshot_end()
    TaskState = api.TaskStatus.TaskState
    tasks, job_states, completed = {}, [], False
    while True:
        kind, item = follower.next(timeout=60)
        if kind != "item":
            completed = kind == "end"
            break
        which = item.WhichOneof("Notification")
        if which == "taskUpdate":
            tasks[item.taskUpdate.task.id] = item.taskUpdate.task
        elif which == "jobUpdate":
            job_states.append(item.jobUpdate.job.status.state)
    check(ended and completed, "ObserveJob of a running job: SnapshotEnd, updates, then the stream completes")
    check(job_states and job_states[-1] == JobState.Finished, f"the batch job runs to Finished (states {job_states})")
    check(len(tasks) == 2, f"ObserveJob streams both tasks ({len(tasks)})")
    for task in tasks.values():
        seen = [s.state for s in task.statusHistory] + [task.status.state]
        check(
            task.status.state == TaskState.Finished and task.status.reasonCode == "normal",
            f"task {task.id} ends Finished/normal ({task.status.state}, {task.status.reasonCode})",
        )
        check(TaskState.Started in seen, f"task {task.id} went through Started ({seen})")
        check(task.taskContext.get("agent.host"), f"task {task.id} names the agent it ran on")

    print("errors")

    def code_of(call):
        try:
            call()
            return None, None
        except grpc.RpcError as e:
            return e.code(), e

    code, e = code_of(lambda: stub.FindJob(api.JobId(id=str(uuid.uuid4())), metadata=md))
    check(code == grpc.StatusCode.NOT_FOUND and "does not exist" in e.details(), "unknown job id: NOT_FOUND")
    code, e = code_of(lambda: stub.FindJob(api.JobId(id="abc"), metadata=md))
    check(code == grpc.StatusCode.INVALID_ARGUMENT and "must be UUID string" in e.details(), "non-UUID job id: INVALID_ARGUMENT")
    code, e = code_of(lambda: stub.KillJob(api.JobId(id=batch_id), metadata=md))
    check(code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION), "killing a killed job: NOT_FOUND or FAILED_PRECONDITION")
    bad = descriptor(api, base, "wirebad")
    bad.container.resources.cpu = 200
    code, e = code_of(lambda: stub.CreateJob(bad, metadata=md + [("x-titus-debug", "true")]))
    trailers = dict(e.trailing_metadata() or []) if e else {}
    check(
        code == grpc.StatusCode.INVALID_ARGUMENT and "container.containerResources.cpu" in e.details(),
        "invalid descriptor: INVALID_ARGUMENT naming the field",
    )
    check("x-titus-error" in trailers and "x-titus-error-bin" in trailers, "X-Titus-Error and X-Titus-Error-bin trailers")
    code, e = code_of(lambda: stub.FindJobs(api.JobQuery(page=base.Page(pageSize=1), filteringCriteria={"cell": "x"}), metadata=md))
    check(code == grpc.StatusCode.INVALID_ARGUMENT and "Unrecognized field(s) [cell]" in e.details(), "unknown criteria key")
    code, e = code_of(lambda: stub.FindJobs(api.JobQuery(), metadata=md))
    check(code == grpc.StatusCode.INVALID_ARGUMENT and "Page size must be > 0" in e.details(), "page size 0")
    code, e = code_of(lambda: stub.KillTask(api.TaskKillRequest(taskId=str(uuid.uuid4())), metadata=md))
    check(code == grpc.StatusCode.NOT_FOUND, "unknown task id: NOT_FOUND")
    code, e = code_of(lambda: stub.UpdateJobCapacity(api.JobCapacityUpdate(jobId=service_id, Capacity=api.Capacity(min=5, desired=1, max=4)), metadata=md))
    check(code == grpc.StatusCode.INVALID_ARGUMENT, "capacity outside its limits: INVALID_ARGUMENT")

    print("rest")
    with urllib.request.urlopen(f"http://{rest_addr}/api/v3/jobs/{service_id}", timeout=10) as response:
        body = json.loads(response.read())
    check(body.get("id") == service_id, "GET /api/v3/jobs/{id}")
    check(body.get("jobDescriptor", {}).get("container", {}).get("resources", {}).get("memoryMB") == 512, "REST JSON uses proto field names (memoryMB)")
    check(body.get("status", {}).get("state") == "Accepted", "REST JSON enums by name")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True, help="directory holding netflix/titus/*.proto (upstream)")
    parser.add_argument("--ours", required=True, help="this project's proto directory (gateway/proto)")
    parser.add_argument("--work", required=True, help="scratch directory")
    parser.add_argument("--grpc", required=True, help="gateway gRPC address host:port")
    parser.add_argument("--rest", required=True, help="gateway REST address host:port")
    args = parser.parse_args()
    compare_descriptors(args.upstream, args.ours, args.work)
    api, rpc, base = generate_client(args.upstream, os.path.join(args.work, "gen"))
    drive(api, rpc, base, args.grpc, args.rest)
    if failures:
        print(f"\n{len(failures)} check(s) failed:")
        for f in failures:
            print(f"  - {f}")
        return 1
    print("\nall wire checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
