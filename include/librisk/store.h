/**
 * @file store.h
 * @brief The store-implementer interface: the callback table (R-ST-1),
 *        the canonical record encoding (R-ST-3) and field-by-field
 *        builders for column stores.
 *
 * A host store fills a #risk_store and hands it to risk_engine_new(). The
 * engine brackets every operation with begin/commit (rollback on any
 * failure) and reaches records only through these callbacks (R-ST-2).
 * docs/store.md explains how to write one.
 *
 * Callback conventions:
 * - Every callback returns #RISK_OK or a negative `RISK_E…` code; a store
 *   may call risk_error_set() to leave a detailed message.
 * - `txn` is the value begin() produced; it is passed back to every call of
 *   that operation, and then to exactly one commit() or rollback().
 * - Handles passed *to* a callback are borrowed for the call; handles a
 *   callback returns through `out` are owned by the engine.
 * - Writes inside a transaction must not be visible to other transactions
 *   or to view_user() before commit(); after rollback() they never were.
 * - Transactions on different users may run in parallel on several
 *   threads; a store that cannot do that serialises inside itself.
 * - The engine checks what a host's callbacks return (a record for the id
 *   asked, result codes in range, visitor results passed back) and fails
 *   the operation with #RISK_ECORRUPT or #RISK_ESTORE when they are wrong:
 *   docs/store.md, "What the engine checks".
 */
#ifndef LIBRISK_STORE_H
#define LIBRISK_STORE_H

#include "../librisk.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief The version of #risk_store this header describes.
 *
 * 1: the table up to `backup`. 2: adds `prefetch_users`. 3: adds
 * `prefetch_events`. The engine reads a table of an older version only up
 * to its last member (version 1 up to `backup`, version 2 up to
 * `prefetch_users`), so a store built against an earlier header keeps
 * working unchanged.
 */
#define RISK_STORE_VERSION 3

/**
 * @brief The storage callback table (R-ST-1). Grows only at the end.
 *
 * Required: begin, commit, rollback, get_user, put_user, get_event,
 * put_event, user_events, reserve_seq, append_history, list_policies, put_policy,
 * remove_policy, get_meta, put_meta. Optional (NULL allowed, R-ST-4):
 * close, view_user, list_users, read_history, compact, backup,
 * prefetch_users (version ≥ 2), prefetch_events (version ≥ 3).
 */
struct risk_store {
    uint32_t version; /**< #RISK_STORE_VERSION. */
    void *ctx;        /**< The store's own state, passed to every callback. */

    /**
     * @brief Begin a transaction.
     * @param[in] ctx the store. @param[in] user_id the user the operation
     *            is about, or NULL (policy changes): a hint for locking.
     * @param[out] txn the transaction.
     */
    int (*begin)(void *ctx, const char *user_id, void **txn);
    /**
     * @brief Commit: make all writes of txn durable and visible at once.
     * On failure the store must hold what it held before begin (and txn is
     * finished: the engine does not call rollback after a failed commit).
     * Return #RISK_ECONFLICT if a user read in txn changed since (R-ST-6).
     */
    int (*commit)(void *ctx, void *txn);
    /** @brief Discard every write of txn. */
    void (*rollback)(void *ctx, void *txn);

    /** @brief Read a user; #RISK_ENOTFOUND if absent. `*out` is owned by the engine. */
    int (*get_user)(void *ctx, void *txn, const char *id, risk_user **out);
    /**
     * @brief Write a user. Its version (risk_user_version()) is one more
     * than the version read in this txn (1 for a new user); a shared store
     * returns #RISK_ECONFLICT (here or at commit) when the stored version
     * is not the one before.
     */
    int (*put_user)(void *ctx, void *txn, const risk_user *user);
    /** @brief Read an event; #RISK_ENOTFOUND if absent. */
    int (*get_event)(void *ctx, void *txn, const char *id, risk_event **out);
    /** @brief Write (insert or replace) an event. */
    int (*put_event)(void *ctx, void *txn, const risk_event *event);
    /** @brief Visit every event of a user (any order); stop when fn returns non-zero and return that. */
    int (*user_events)(void *ctx, void *txn, const char *user_id, risk_event_visit_fn fn,
                       void *arg);
    /**
     * @brief Reserve the next history sequence number for txn: strictly
     * greater than every number reserved before. Readers of the history
     * must never see a number before every smaller reserved number has
     * committed or rolled back (the simple way: a sequencer lock taken
     * here and released by commit/rollback), so a feed never skips items.
     */
    int (*reserve_seq)(void *ctx, void *txn, uint64_t *seq);
    /**
     * @brief Append a history item whose seq was reserved in this txn and
     * whose chain hash the engine has set.
     */
    int (*append_history)(void *ctx, void *txn, const risk_history *item);
    /** @brief Visit every policy (any order). */
    int (*list_policies)(void *ctx, void *txn, risk_policy_visit_fn fn, void *arg);
    /** @brief Write (insert or replace by name) a policy. */
    int (*put_policy)(void *ctx, void *txn, const risk_policy *policy);
    /** @brief Remove a policy by name; #RISK_ENOTFOUND if absent. */
    int (*remove_policy)(void *ctx, void *txn, const char *name);
    /**
     * @brief Read a small named value (≤ 256 bytes) written by put_meta.
     * @param[out] len its length. #RISK_ENOTFOUND if absent;
     * #RISK_ERANGE if cap is too small.
     */
    int (*get_meta)(void *ctx, void *txn, const char *key, uint8_t *buf, size_t cap,
                    size_t *len);
    /** @brief Write a small named value (≤ 256 bytes). */
    int (*put_meta)(void *ctx, void *txn, const char *key, const uint8_t *buf, size_t len);

    /** @brief Optional: release the store (called by risk_engine_free()). */
    void (*close)(void *ctx);
    /**
     * @brief Optional: read the committed user without a transaction and
     * without allocating: call fn with a borrowed handle valid during the
     * call (the sign-in hot path). #RISK_ENOTFOUND if absent.
     */
    int (*view_user)(void *ctx, const char *id, risk_user_visit_fn fn, void *arg);
    /** @brief Optional: visit committed users whose stored level ≥ min_level (any order). */
    int (*list_users)(void *ctx, risk_level min_level, risk_user_visit_fn fn, void *arg);
    /**
     * @brief Optional: visit committed history items in seq order, from
     * since_seq on; only those of user_id unless it is NULL.
     */
    int (*read_history)(void *ctx, const char *user_id, uint64_t since_seq,
                        risk_history_visit_fn fn, void *arg);
    /** @brief Optional: compact the store. */
    int (*compact)(void *ctx);
    /** @brief Optional: write a consistent copy to path. */
    int (*backup)(void *ctx, const char *path);

    /**
     * @brief Optional (version ≥ 2): a hint that a read of each of these
     * users follows soon: view_user() in risk_engine_sign_in_bulk(),
     * get_user() in a transaction in risk_engine_ingest_bulk().
     *
     * A store whose lookups miss the processor's caches starts fetching
     * what those calls will read, so that the lookups of many users
     * overlap instead of waiting for memory one after another. It must
     * not change what any call returns, and may do nothing. Called
     * without a transaction, from any thread, concurrently with every
     * other callback; the ids are valid user ids (non-NULL, checked).
     * @param[in] ctx the store. @param[in] ids the user ids. @param[in] n their number (≥ 1).
     */
    void (*prefetch_users)(void *ctx, const char *const *ids, size_t n);

    /**
     * @brief Optional (version ≥ 3): a hint that get_event() of each of
     * these event ids follows soon (risk_engine_ingest_bulk(), where most
     * ids are new: the lookup that finds an id absent misses the caches
     * as much as one that finds it).
     *
     * The same contract as prefetch_users(): it must not change what any
     * call returns, may do nothing, and is called without a transaction,
     * from any thread, concurrently with every other callback; the ids are
     * valid event ids (non-NULL, checked).
     * @param[in] ctx the store. @param[in] ids the event ids. @param[in] n their number (≥ 1).
     */
    void (*prefetch_events)(void *ctx, const char *const *ids, size_t n);
};

/**
 * @brief Leave a detailed message for the current failure (for stores).
 * @param[in] code the code being returned. @param[in] message the text (copied, truncated to 511 bytes).
 * @returns code, for `return risk_error_set(RISK_EIO, "…");`.
 * @note Thread-safe (thread-local). @since 0.1
 */
RISK_API int risk_error_set(int code, const char *message);

/* ---- derived fields, for stores rebuilding handles column by column ---- */

/**
 * @brief The record version (R-ST-6). @param[in] user the user. @returns the version, 0 for never stored.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API uint64_t risk_user_version(const risk_user *user);
/**
 * @brief Set the record version.
 * @param[in,out] user the user. @param[in] version the version.
 * @retval RISK_OK set. @retval RISK_EINVAL NULL.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API int risk_user_set_version(risk_user *user, uint64_t version);
/**
 * @brief Set the password flags and the last remediation time.
 * @param[in,out] user the user. @param[in] must_change_password 0/1.
 * @param[in] reset_required 0/1. @param[in] remediated_at ms or #RISK_TIME_NONE.
 * @retval RISK_OK set. @retval RISK_EINVAL invalid.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API int risk_user_set_password_state(risk_user *user, int must_change_password,
                                          int reset_required, int64_t remediated_at);
/**
 * @brief Set the derived risk fields.
 * @param[in,out] user the user. @param[in] level a #risk_level.
 * @param[in] state a #risk_state. @param[in] detail a #risk_detail.
 * @param[in] updated_at ms or #RISK_TIME_NONE. @param[in] score the score.
 * @param[in] risk_since ms or #RISK_TIME_NONE. @param[in] next_change_at ms or #RISK_TIME_NONE.
 * @param[in] active_events number of active events.
 * @retval RISK_OK set. @retval RISK_EINVAL invalid.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API int risk_user_set_risk(risk_user *user, risk_level level, risk_state state,
                                risk_detail detail, int64_t updated_at, uint64_t score,
                                int64_t risk_since, int64_t next_change_at,
                                uint32_t active_events);
/**
 * @brief The head of the user's history chain (R-AU-1). @param[in] user the user. @returns 32 borrowed bytes (zeros before any item).
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API const uint8_t *risk_user_chain_head(const risk_user *user);
/**
 * @brief Set the head of the user's history chain.
 * @param[in,out] user the user. @param[in] head 32 bytes.
 * @retval RISK_OK set. @retval RISK_EINVAL NULL.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API int risk_user_set_chain_head(risk_user *user, const uint8_t head[32]);
/**
 * @brief Set an event's closing (state, reason, time, actor).
 * @param[in,out] event the event. @param[in] state a #risk_event_state.
 * @param[in] reason a #risk_close_reason consistent with state.
 * @param[in] closed_at ms, or #RISK_TIME_NONE when active.
 * @param[in] closed_by actor, or NULL when active.
 * @retval RISK_OK set. @retval RISK_EINVAL invalid or inconsistent.
 * @retval RISK_ENOMEM out of memory.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API int risk_event_set_closing(risk_event *event, risk_event_state state,
                                    risk_close_reason reason, int64_t closed_at,
                                    const char *closed_by);

/**
 * @brief Create a history item (for stores rebuilding one column by column).
 * @param[out] out the item. @param[in] seq its sequence number.
 * @param[in] at when. @param[in] actor who (an id).
 * @param[in] action a #risk_history_action.
 * @param[in] user_id the user, or NULL. @param[in] event_id the event, or NULL.
 * @param[in] policy the policy, or NULL.
 * @retval RISK_OK created. @retval RISK_EINVAL invalid. @retval RISK_ENOMEM out of memory.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API int risk_history_new(risk_history **out, uint64_t seq, int64_t at, const char *actor,
                              risk_history_action action, const char *user_id,
                              const char *event_id, const char *policy);
/**
 * @brief Set the before/after summary of a history item.
 * @param[in,out] item the item. @param[in] level_before the level before.
 * @param[in] level_after the level after. @param[in] state_before the state before.
 * @param[in] state_after the state after. @param[in] changed events changed.
 * @param[in] note note or NULL (≤ 1024 bytes).
 * @retval RISK_OK set. @retval RISK_EINVAL invalid. @retval RISK_ENOMEM out of memory.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API int risk_history_set_change(risk_history *item, risk_level level_before,
                                     risk_level level_after, risk_state state_before,
                                     risk_state state_after, uint32_t changed, const char *note);
/**
 * @brief Set the sequence number.
 * @param[in,out] item the item. @param[in] seq the number.
 * @retval RISK_OK set. @retval RISK_EINVAL NULL.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API int risk_history_set_seq(risk_history *item, uint64_t seq);
/**
 * @brief Set the chain hash.
 * @param[in,out] item the item. @param[in] chain 32 bytes.
 * @retval RISK_OK set. @retval RISK_EINVAL NULL.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API int risk_history_set_chain(risk_history *item, const uint8_t chain[32]);

/* ---- canonical encoding (R-ST-3, R-IV-2) ---- */

/** @brief The version byte written by the encoders. */
#define RISK_CODEC_VERSION 1

/**
 * @brief Encode a user canonically.
 * @param[out] buf destination of cap bytes (NULL with cap 0: measure only).
 * @param[in] cap its size.
 * @param[out] len bytes needed/written. @param[in] user the user.
 * @retval RISK_OK encoded (or measured). @retval RISK_ERANGE cap too small
 *         (len says how much is needed). @retval RISK_EINVAL NULL argument.
 * @note Thread-safe: reads only its arguments and writes only its outputs.
 * @since 0.1
 */
RISK_API int risk_user_encode(uint8_t *buf, size_t cap, size_t *len, const risk_user *user);
/**
 * @brief Decode a user, trusting nothing.
 * @param[out] out the user. @param[in] buf bytes. @param[in] len their number.
 * @retval RISK_OK decoded. @retval RISK_ECORRUPT truncated, oversized or
 *         invalid. @retval RISK_EINVAL NULL argument. @retval RISK_ENOMEM out of memory.
 * @note Thread-safe: reads only its arguments and writes only its outputs.
 * @since 0.1
 */
RISK_API int risk_user_decode(risk_user **out, const uint8_t *buf, size_t len);
/**
 * @brief Encode an event canonically.
 * @param[out] buf destination of cap bytes (NULL with cap 0: measure only).
 * @param[in] cap its size.
 * @param[out] len bytes needed/written. @param[in] event the event.
 * @retval RISK_OK encoded. @retval RISK_ERANGE cap too small. @retval RISK_EINVAL NULL.
 * @note Thread-safe: reads only its arguments and writes only its outputs.
 * @since 0.1
 */
RISK_API int risk_event_encode(uint8_t *buf, size_t cap, size_t *len, const risk_event *event);
/**
 * @brief Decode an event, trusting nothing.
 * @param[out] out the event. @param[in] buf bytes. @param[in] len their number.
 * @retval RISK_OK decoded. @retval RISK_ECORRUPT invalid. @retval RISK_EINVAL NULL.
 * @retval RISK_ENOMEM out of memory.
 * @note Thread-safe: reads only its arguments and writes only its outputs.
 * @since 0.1
 */
RISK_API int risk_event_decode(risk_event **out, const uint8_t *buf, size_t len);
/**
 * @brief Encode a policy canonically (include/exclude lists sorted).
 * @param[out] buf destination of cap bytes (NULL with cap 0: measure only).
 * @param[in] cap its size.
 * @param[out] len bytes needed/written. @param[in] policy the policy.
 * @retval RISK_OK encoded. @retval RISK_ERANGE cap too small. @retval RISK_EINVAL NULL.
 * @note Thread-safe: reads only its arguments and writes only its outputs.
 * @since 0.1
 */
RISK_API int risk_policy_encode(uint8_t *buf, size_t cap, size_t *len, const risk_policy *policy);
/**
 * @brief Decode a policy, trusting nothing.
 * @param[out] out the policy. @param[in] buf bytes. @param[in] len their number.
 * @retval RISK_OK decoded. @retval RISK_ECORRUPT invalid. @retval RISK_EINVAL NULL.
 * @retval RISK_ENOMEM out of memory.
 * @note Thread-safe: reads only its arguments and writes only its outputs.
 * @since 0.1
 */
RISK_API int risk_policy_decode(risk_policy **out, const uint8_t *buf, size_t len);
/**
 * @brief Encode a history item canonically (chain hash included).
 * @param[out] buf destination of cap bytes (NULL with cap 0: measure only).
 * @param[in] cap its size.
 * @param[out] len bytes needed/written. @param[in] item the item.
 * @retval RISK_OK encoded. @retval RISK_ERANGE cap too small. @retval RISK_EINVAL NULL.
 * @note Thread-safe: reads only its arguments and writes only its outputs.
 * @since 0.1
 */
RISK_API int risk_history_encode(uint8_t *buf, size_t cap, size_t *len, const risk_history *item);
/**
 * @brief Decode a history item, trusting nothing.
 * @param[out] out the item. @param[in] buf bytes. @param[in] len their number.
 * @retval RISK_OK decoded. @retval RISK_ECORRUPT invalid. @retval RISK_EINVAL NULL.
 * @retval RISK_ENOMEM out of memory.
 * @note Thread-safe: reads only its arguments and writes only its outputs.
 * @since 0.1
 */
RISK_API int risk_history_decode(risk_history **out, const uint8_t *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* LIBRISK_STORE_H */
