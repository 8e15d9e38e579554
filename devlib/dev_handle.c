/* dev_handle.c - one message from the core to an attached device
 * (devlib.h): the protocol's rules, the device's ops for the rest. */
#include "devlib.h"

#include "log.h"

/* The shadows the device published while applying the message are visible
 * to a core that sees this seq; a vCPU waiting for it is woken (ipc.h,
 * struct ipc_applied_wait: store, then look, both sequentially
 * consistent). */
static void mark_applied(struct dev_port *p, uint64_t seq)
{
	struct ipc_state_page *page = p->page;
	atomic_store(&page->applied_seq, seq);
	if (atomic_load(&page->applied.vcpus_waiting)) {
		atomic_fetch_add(&page->applied.wake, 1);
		host_shared_wake(&page->applied.wake);
	}
}

static void read_done(struct dev_port *p, const struct ipc_io *io)
{
	if (p->ops->read_done)
		p->ops->read_done(p->dev, io);
	else
		log_once("ignoring IO_READ_DONE: this device declared no read-acknowledge register");
}

enum dev_verdict dev_handle(struct dev_port *p, const struct ipc_msg *m)
{
	switch (m->type) {
	case IPC_IO_READ: {
		struct ipc_msg reply = {.type = IPC_IO_REPLY, .seq = m->seq};
		reply.u.io = m->u.io;
		reply.u.io.data = p->ops->read(p->dev, &m->u.io);
		p->send(p->send_opaque, &reply);
		break;
	}
	case IPC_IO_WRITE:
		p->ops->write(p->dev, &m->u.io);
		mark_applied(p, m->seq);
		break;
	case IPC_IO_WRITE_RUN: {
		/* One write per byte, as if each had come alone; what the core
		 * did to the line before it sent the run comes with the first. */
		struct ipc_io io = {.space = m->u.run.space, .size = 1, .addr = m->u.run.addr,
				    .line = m->u.run.line};
		for (unsigned i = 0; i < m->u.run.count && i < IPC_IO_RUN_MAX; i++) {
			io.data = m->u.run.data[i];
			p->ops->write(p->dev, &io);
			io.line = (struct ipc_line_note){.action = IPC_LINE_UNTOUCHED};
		}
		if (!m->u.run.then_read_done) {
			mark_applied(p, m->seq);
			break;
		}
		/* The read done that followed the writes (ipc.h): the two
		 * messages in one, applied in their order. */
		read_done(p, &m->u.run.read_done);
		mark_applied(p, m->u.run.read_done_seq);
		break;
	}
	case IPC_IO_READ_DONE:
		read_done(p, &m->u.io);
		mark_applied(p, m->seq);
		break;
	case IPC_RESET:
		/* Ordered like a write: the core's shadow reads wait for it. */
		p->ops->reset(p->dev);
		mark_applied(p, m->seq);
		break;
	case IPC_SHUTDOWN:
		return DEV_EXIT;
	case IPC_PING: {
		struct ipc_msg pong = {.type = IPC_PONG, .seq = m->seq};
		p->send(p->send_opaque, &pong);
		break;
	}
	case IPC_PONG:
		break;
	default:
		log_once("ignoring an unexpected %s message from the core", ipc_type_name(m->type));
		break;
	}
	return DEV_CONTINUE;
}

bool dev_keep_early(const struct ipc_msg *m)
{
	return m->type == IPC_IO_WRITE || m->type == IPC_IO_WRITE_RUN || m->type == IPC_IO_READ_DONE ||
	       m->type == IPC_RESET;
}
