/*
 * email_tasks.h - tasks: run a function in its own process, collect its
 * result.
 *
 * Email1 starts one task per email, all at once (bl_task_async), and
 * collects their results with bl_task_await_many.  Email2 uses tasks not
 * linked to the caller (bl_task_async_nolink): sending to b@com crashes its
 * task, and the caller lives on and learns of the crash from the task's
 * monitor.
 *
 * The seed's emails take 1 s; here 100 ms.  Elixir's Email2 starts its
 * tasks under a Task.Supervisor and never looks at them; here the caller
 * awaits them, to show what each one did.
 */
#ifndef EMAIL_TASKS_H
#define EMAIL_TASKS_H

#include <beamline.h>
#include <beamline/task.h>
#include <stddef.h>
#include <stdint.h>

#define EMAIL_SEND_MS 100 /* how long sending one email takes */

/*
 * A task function: sends the email to address arg (a string), which takes
 * EMAIL_SEND_MS, logs "<address> received" and returns that text.
 */
void send_email(void *address, bl_task_out *out);
/* As send_email, but the email to "b@com" crashes the task: Email2's send_email. */
void send_email_or_crash(void *address, bl_task_out *out);

/*
 * Sends n emails concurrently, one task each, linked to the caller (Email1),
 * and waits up to timeout_ms for all of them.  res[i] gets the result of
 * emails[i] (free each with bl_task_result_free).  Returns 0, or the errors
 * of bl_task_async and bl_task_await_many.
 */
int email_send_all(const char *const *emails, size_t n, bl_task_result *res, int64_t timeout_ms);
/*
 * As email_send_all with send_email_or_crash and tasks that are not linked
 * to the caller (Email2): a crashing task leaves the caller alone.  Returns
 * how many were sent (res[i] OK) or a negative errno; res[i] is EXIT for a
 * task that crashed.
 */
int email_send_all_nolink(const char *const *emails, size_t n, bl_task_result *res,
                          int64_t timeout_ms);

#endif
