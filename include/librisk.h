/**
 * @file librisk.h
 * @brief The public API of librisk: identity-risk state of user accounts.
 *
 * Conventions (see docs/abi.md):
 * - Fallible functions return `int`: #RISK_OK (0) or a negative `RISK_E…`
 *   code; the detailed message of the last failure on the calling thread is
 *   read with risk_error_last().
 * - Out-parameters come first. What a `T **out` returns the caller owns and
 *   frees with `risk_T_free()`, which accepts NULL.
 * - Borrowed `const char *` results live as long as the handle they came
 *   from, or until the next setter on that handle.
 * - Times are milliseconds since the Unix epoch (UTC) in `int64_t`;
 *   #RISK_TIME_NONE means "absent".
 * - Handles are not thread-safe objects: one handle may be read by many
 *   threads at once but must not be changed while others use it. The engine
 *   (risk_engine) is thread-safe as documented per function.
 */
#ifndef LIBRISK_H
#define LIBRISK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Marks a symbol exported from the shared library. */
#if defined(LIBRISK_BUILDING) && defined(__GNUC__)
#define RISK_API __attribute__((visibility("default")))
#else
#define RISK_API
#endif

/* ------------------------------------------------------------------ */
/** @defgroup version Versions
 *  @{ */

/** @brief Major release version: bumped on incompatible API changes. */
#define RISK_VERSION_MAJOR 0
/** @brief Minor release version: bumped when the API grows. */
#define RISK_VERSION_MINOR 1
/** @brief Patch release version. */
#define RISK_VERSION_PATCH 0
/** @brief The release as one number: major * 10000 + minor * 100 + patch. */
#define RISK_VERSION_NUMBER \
    (RISK_VERSION_MAJOR * 10000 + RISK_VERSION_MINOR * 100 + RISK_VERSION_PATCH)

/**
 * @brief The release of the library loaded at run time.
 * @returns #RISK_VERSION_NUMBER of the library that was built.
 * @note Thread-safe. @since 0.1
 */
RISK_API uint32_t risk_version_number(void);

/**
 * @brief The release of the library loaded at run time, as text.
 * @returns a static string such as "0.1.0".
 * @note Thread-safe. @since 0.1
 */
RISK_API const char *risk_version_string(void);

/** @} */

/* ------------------------------------------------------------------ */
/** @defgroup errors Errors
 *  Error codes are pinned forever: a released value never changes meaning.
 *
 *  A function that hands out a new object through an `out` parameter
 *  (`risk_user_new()`, `risk_engine_user()`, `risk_explain()`, …) sets
 *  `*out` to NULL before anything else, so after a failure `*out` is NULL
 *  and a cleanup path may pass it to the matching `…_free()`.
 *  @{ */

/** @brief Result codes of every fallible function. */
typedef enum risk_error {
    RISK_OK = 0,            /**< Success. */
    RISK_EINVAL = -1,       /**< An argument is invalid; nothing changed. */
    RISK_ENOMEM = -2,       /**< An allocation failed; nothing changed. */
    RISK_ENOTFOUND = -3,    /**< The user, event or policy does not exist. */
    RISK_EEXISTS = -4,      /**< A different record already has this id. */
    RISK_ETRANSITION = -5,  /**< The state machine forbids this action. */
    RISK_ENOMFA = -6,       /**< The user is not registered for MFA. */
    RISK_EDELETED = -7,     /**< The user is deleted. */
    RISK_EBUSY = -8,        /**< The store is locked by another writer. */
    RISK_ECORRUPT = -9,     /**< Stored or imported bytes are corrupt. */
    RISK_EIO = -10,         /**< An input/output error. */
    RISK_EUNSUPPORTED = -11,/**< The store does not provide this callback. */
    RISK_ECONFLICT = -12,   /**< A record changed under a shared store. */
    RISK_ERANGE = -13,      /**< An output buffer is too small. */
    RISK_EREADONLY = -14,   /**< The store was opened read-only. */
    RISK_ESTORE = -15,      /**< A host store failed (no finer code). */
    RISK_EVERIFY = -16      /**< A verification (chain, receipt) failed. */
} risk_error;

/**
 * @brief A static English description of an error code.
 * @param[in] code a value of #risk_error (any int is accepted).
 * @returns a static string; "unknown error" for unknown codes.
 * @note Thread-safe. @since 0.1
 */
RISK_API const char *risk_strerror(int code);

/**
 * @brief The constant's name of an error code, e.g. "RISK_EINVAL".
 * @param[in] code a value of #risk_error.
 * @returns a static string; "RISK_E?" for unknown codes.
 * @note Thread-safe. @since 0.1
 */
RISK_API const char *risk_error_name(int code);

/**
 * @brief The detailed message of the last failure on this thread.
 *
 * The message names the offending argument, e.g.
 * "user_id: invalid UTF-8 at byte 3". Successful calls do not clear it.
 * @returns a thread-local string valid until the next failing call on this
 *          thread; "" if nothing failed yet.
 * @note Thread-safe (thread-local). @since 0.1
 */
RISK_API const char *risk_error_last(void);

/**
 * @brief The code of the last failure on this thread (0 if none).
 * @returns a #risk_error value.
 * @note Thread-safe (thread-local). @since 0.1
 */
RISK_API int risk_error_last_code(void);

/**
 * @brief Forget the last failure on this thread.
 * @note Thread-safe (thread-local). @since 0.1
 */
RISK_API void risk_error_clear(void);

/** @} */

/* ------------------------------------------------------------------ */
/** @defgroup alloc Allocator
 *  @{ */

/** @brief The version of #risk_allocator this header describes. */
#define RISK_ALLOCATOR_VERSION 1

/**
 * @brief A host allocator: every allocation of the library goes through it.
 *
 * All three functions must be set. They receive `userdata` last.
 */
typedef struct risk_allocator {
    uint32_t version; /**< #RISK_ALLOCATOR_VERSION. */
    /** @brief Allocate `size` bytes (size > 0); NULL on failure. */
    void *(*malloc_fn)(size_t size, void *userdata);
    /** @brief Resize `ptr` (never NULL) to `size` > 0; NULL on failure. */
    void *(*realloc_fn)(void *ptr, size_t size, void *userdata);
    /** @brief Release `ptr` (never NULL). */
    void (*free_fn)(void *ptr, void *userdata);
    void *userdata; /**< Passed to the three functions. */
} risk_allocator;

/** @brief Static initialiser of #risk_allocator. */
#define RISK_ALLOCATOR_INIT { RISK_ALLOCATOR_VERSION, NULL, NULL, NULL, NULL }

/**
 * @brief Install a host allocator (NULL restores the C library's).
 *
 * Must be called while no handle, engine or store exists: memory is freed
 * with the allocator that is installed when it is freed.
 * @param[in] alloc the allocator, copied; NULL for the default.
 * @retval RISK_OK installed.
 * @retval RISK_EINVAL wrong version or a NULL function.
 * @note Not thread-safe: call it before any other use of the library.
 * @since 0.1
 */
RISK_API int risk_set_allocator(const risk_allocator *alloc);

/** @} */

/* ------------------------------------------------------------------ */
/** @defgroup enums Enumerations and their names
 *  Names are the lower-snake spellings of SPEC.md.
 *  @{ */

/** @brief "No time": an absent timestamp. */
#define RISK_TIME_NONE INT64_C(-1)
/** @brief Exclusive upper bound of valid timestamps (2^53 ms). */
#define RISK_TIME_MAX INT64_C(9007199254740992)
/** @brief Maximal byte length of ids, names, actors. */
#define RISK_ID_MAX 256
/** @brief Maximal byte length of a detection type. */
#define RISK_TYPE_MAX 64
/** @brief Maximal byte length of ip, location, source. */
#define RISK_INFO_MAX 256
/** @brief Maximal byte length of a note. */
#define RISK_NOTE_MAX 1024

/** @brief Risk levels, ordered. */
typedef enum risk_level {
    RISK_LEVEL_NONE = 0,   /**< No risk. Not a valid event level. */
    RISK_LEVEL_LOW = 1,    /**< Low. */
    RISK_LEVEL_MEDIUM = 2, /**< Medium. */
    RISK_LEVEL_HIGH = 3    /**< High. */
} risk_level;

/** @brief Whether an event counts. */
typedef enum risk_event_state {
    RISK_EVENT_ACTIVE = 0, /**< Counts towards the user's level. */
    RISK_EVENT_CLOSED = 1  /**< Closed; see #risk_close_reason. */
} risk_event_state;

/** @brief Why an event was closed. */
typedef enum risk_close_reason {
    RISK_CLOSE_NONE = 0,           /**< Not closed. */
    RISK_CLOSE_RESOLVED = 1,       /**< Resolved by an admin. */
    RISK_CLOSE_FALSE_POSITIVE = 2, /**< Marked false positive. */
    RISK_CLOSE_IGNORED = 3,        /**< Ignored. */
    RISK_CLOSE_DISMISSED = 4,      /**< Dismissed with all the user's risk. */
    RISK_CLOSE_REMEDIATED = 5,     /**< Closed by a password remediation. */
    RISK_CLOSE_AGED = 6            /**< Closed by aging (R-SC-2). */
} risk_close_reason;

/** @brief Actions of the event state machine (SPEC §3). */
typedef enum risk_action {
    RISK_ACTION_RESOLVE = 0,        /**< Close as resolved. */
    RISK_ACTION_FALSE_POSITIVE = 1, /**< Close as false positive. */
    RISK_ACTION_IGNORE = 2,         /**< Close as ignored. */
    RISK_ACTION_DISMISS = 3,        /**< Close as dismissed. */
    RISK_ACTION_REMEDIATE = 4,      /**< Close as remediated. */
    RISK_ACTION_AGE = 5,            /**< Close as aged. */
    RISK_ACTION_REACTIVATE = 6      /**< Reopen a manually closed event. */
} risk_action;

/** @brief When a detection was computed (informational). */
typedef enum risk_timing {
    RISK_TIMING_REALTIME = 0, /**< Real time. */
    RISK_TIMING_OFFLINE = 1   /**< Offline. */
} risk_timing;

/** @brief A user's risk state (SPEC §5). */
typedef enum risk_state {
    RISK_STATE_NONE = 0,                 /**< Never at risk, or closed. */
    RISK_STATE_AT_RISK = 1,              /**< Has active risk. */
    RISK_STATE_REMEDIATED = 2,           /**< Remediated by a password. */
    RISK_STATE_DISMISSED = 3,            /**< Risk dismissed by an admin. */
    RISK_STATE_CONFIRMED_SAFE = 4,       /**< Confirmed safe by an admin. */
    RISK_STATE_CONFIRMED_COMPROMISED = 5 /**< Confirmed compromised. */
} risk_state;

/** @brief Why the state is what it is (SPEC §5). */
typedef enum risk_detail {
    RISK_DETAIL_NONE = 0,                                   /**< none */
    RISK_DETAIL_ADMIN_GENERATED_TEMPORARY_PASSWORD = 1,     /**< temporary password */
    RISK_DETAIL_USER_PERFORMED_SECURED_PASSWORD_CHANGE = 2, /**< secure change */
    RISK_DETAIL_USER_PERFORMED_SECURED_PASSWORD_RESET = 3,  /**< secure reset */
    RISK_DETAIL_ADMIN_DISMISSED_ALL_RISK = 4,               /**< dismiss all */
    RISK_DETAIL_ADMIN_CONFIRMED_COMPROMISED = 5,            /**< confirm compromised */
    RISK_DETAIL_ADMIN_CONFIRMED_SAFE = 6,                   /**< confirm safe */
    RISK_DETAIL_ADMIN_CLOSED_EVENTS = 7,                    /**< last event closed manually */
    RISK_DETAIL_AGED_OUT = 8                                /**< last event aged out */
} risk_detail;

/** @brief Whether a policy is enforced. */
typedef enum risk_policy_mode {
    RISK_MODE_OFF = 0,        /**< Ignored. */
    RISK_MODE_ON = 1,         /**< Enforced. */
    RISK_MODE_REPORT_ONLY = 2 /**< Evaluated and reported, never enforced. */
} risk_policy_mode;

/** @brief What a policy requires when it fires. */
typedef enum risk_control {
    RISK_CONTROL_REQUIRE_PASSWORD_CHANGE = 0, /**< Require a password change. */
    RISK_CONTROL_BLOCK = 1                    /**< Block the sign-in. */
} risk_control;

/** @brief A sign-in decision; higher is more restrictive. */
typedef enum risk_decision {
    RISK_DECISION_ALLOW = 0,                   /**< Allow. */
    RISK_DECISION_REQUIRE_PASSWORD_CHANGE = 1, /**< Require a password change. */
    RISK_DECISION_BLOCK = 2                    /**< Block. */
} risk_decision;

/** @brief Why a sign-in was decided as it was (R-PO-5). */
typedef enum risk_reason {
    RISK_REASON_NONE = 0,                       /**< Allowed, nothing fired. */
    RISK_REASON_RISK_LEVEL = 1,                 /**< A policy fired on the level. */
    RISK_REASON_NOT_MFA_REGISTERED = 2,         /**< Cannot self-remediate. */
    RISK_REASON_MFA_REGISTERED_DURING_RISK = 3, /**< MFA came after the risk. */
    RISK_REASON_TEMPORARY_PASSWORD = 4,         /**< Must change a temporary password. */
    RISK_REASON_RESET_REQUIRED = 5,             /**< An admin required a reset. */
    RISK_REASON_USER_DELETED = 6,               /**< The account is deleted. */
    RISK_REASON_STORE_ERROR = 7                 /**< The store failed: fail closed. */
} risk_reason;

/** @brief Kinds of password change a host reports (R-PO-10). */
typedef enum risk_password_change {
    RISK_PASSWORD_SECURE_CHANGE = 0, /**< Changed after MFA proof. */
    RISK_PASSWORD_SECURE_RESET = 1,  /**< Self-service reset after MFA proof. */
    RISK_PASSWORD_INSECURE = 2       /**< Changed without MFA proof. */
} risk_password_change;

/** @brief What a history item records. */
typedef enum risk_history_action {
    RISK_HISTORY_INGEST = 0,              /**< "ingest": a detection arrived. */
    RISK_HISTORY_EVENT_UPDATED = 1,       /**< "event_updated" (R-OP-7). */
    RISK_HISTORY_USER_UPSERT = 2,         /**< "user_upsert" (R-OP-4). */
    RISK_HISTORY_RESOLVE = 3,             /**< "resolve". */
    RISK_HISTORY_FALSE_POSITIVE = 4,      /**< "false_positive". */
    RISK_HISTORY_IGNORE = 5,              /**< "ignore". */
    RISK_HISTORY_REACTIVATE = 6,          /**< "reactivate". */
    RISK_HISTORY_DISMISS_ALL = 7,         /**< "dismiss_all". */
    RISK_HISTORY_SECURE_PASSWORD_CHANGE = 8, /**< "secure_password_change". */
    RISK_HISTORY_SECURE_PASSWORD_RESET = 9,  /**< "secure_password_reset". */
    RISK_HISTORY_INSECURE_PASSWORD_CHANGE = 10, /**< "insecure_password_change". */
    RISK_HISTORY_TEMPORARY_PASSWORD = 11, /**< "temporary_password". */
    RISK_HISTORY_REQUIRE_RESET = 12,      /**< "require_reset". */
    RISK_HISTORY_CONFIRM_COMPROMISED = 13,/**< "confirm_compromised". */
    RISK_HISTORY_CONFIRM_SAFE = 14,       /**< "confirm_safe". */
    RISK_HISTORY_AGE = 15,                /**< "age": aging closed events. */
    RISK_HISTORY_POLICY_SET = 16,         /**< "policy_set". */
    RISK_HISTORY_POLICY_REMOVE = 17       /**< "policy_remove". */
} risk_history_action;

/** @brief Which enumeration risk_enum_name() and risk_enum_parse() use. */
typedef enum risk_enum_kind {
    RISK_ENUM_LEVEL = 0,          /**< #risk_level */
    RISK_ENUM_EVENT_STATE = 1,    /**< #risk_event_state */
    RISK_ENUM_CLOSE_REASON = 2,   /**< #risk_close_reason */
    RISK_ENUM_ACTION = 3,         /**< #risk_action */
    RISK_ENUM_TIMING = 4,         /**< #risk_timing */
    RISK_ENUM_STATE = 5,          /**< #risk_state */
    RISK_ENUM_DETAIL = 6,         /**< #risk_detail */
    RISK_ENUM_POLICY_MODE = 7,    /**< #risk_policy_mode */
    RISK_ENUM_CONTROL = 8,        /**< #risk_control */
    RISK_ENUM_DECISION = 9,       /**< #risk_decision */
    RISK_ENUM_REASON = 10,        /**< #risk_reason */
    RISK_ENUM_PASSWORD_CHANGE = 11, /**< #risk_password_change */
    RISK_ENUM_HISTORY_ACTION = 12,  /**< #risk_history_action */
    RISK_ENUM_DETAIL_GRAPH = 13     /**< #risk_detail, Microsoft Graph spelling */
} risk_enum_kind;

/**
 * @brief The SPEC spelling of an enumeration value, e.g. "at_risk".
 *
 * With #RISK_ENUM_DETAIL_GRAPH the Microsoft Graph `riskDetail` spelling is
 * returned ("adminDismissedAllRiskForUser"); librisk's own details without
 * a Graph value return their librisk spelling.
 * @param[in] kind which enumeration.
 * @param[in] value the value.
 * @returns a static string, or NULL if kind or value is out of range.
 * @note Thread-safe. @since 0.1
 */
RISK_API const char *risk_enum_name(risk_enum_kind kind, uint32_t value);

/**
 * @brief Parse the SPEC spelling of an enumeration value.
 * @param[in] kind which enumeration (#RISK_ENUM_DETAIL_GRAPH parses Graph
 *            spellings).
 * @param[in] name the spelling, exact and case-sensitive.
 * @param[out] out the value.
 * @retval RISK_OK parsed.
 * @retval RISK_EINVAL NULL argument, unknown kind or unknown name.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_enum_parse(risk_enum_kind kind, const char *name, uint32_t *out);

/** @} */

/* ------------------------------------------------------------------ */
/** @defgroup records Records: users, events, policies, history items
 *  Opaque handles. Every setter validates (SPEC §2, §7) and on failure
 *  returns #RISK_EINVAL or #RISK_ENOMEM leaving the handle unchanged.
 *  @{ */

/** @brief A user account and its derived risk fields. */
typedef struct risk_user risk_user;
/** @brief A risk event (detection). */
typedef struct risk_event risk_event;
/** @brief A user risk policy. */
typedef struct risk_policy risk_policy;
/** @brief One item of the audit history. */
typedef struct risk_history risk_history;

/**
 * @brief Check that a string is a valid id (user, event, policy, actor).
 *
 * 1–256 bytes of valid UTF-8 without control characters.
 * @param[in] id the string.
 * @retval RISK_OK valid.
 * @retval RISK_EINVAL invalid; risk_error_last() says why.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_id_check(const char *id);

/**
 * @brief Create a user with defaults (not MFA-registered, not deleted,
 *        level none, state none).
 * @param[out] out the new user, owned by the caller.
 * @param[in] id the user id (see risk_id_check()).
 * @retval RISK_OK created.
 * @retval RISK_EINVAL NULL out or invalid id.
 * @retval RISK_ENOMEM out of memory.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_user_new(risk_user **out, const char *id);
/**
 * @brief Copy a user.
 * @param[out] out the copy, owned by the caller.
 * @param[in] user the user.
 * @retval RISK_OK copied. @retval RISK_EINVAL NULL argument.
 * @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_user_dup(risk_user **out, const risk_user *user);
/** @brief Free a user; NULL is accepted. @param[in] user the user. @since 0.1 */
RISK_API void risk_user_free(risk_user *user);

/** @brief The id. @param[in] user the user (not NULL). @returns borrowed string. @since 0.1 */
RISK_API const char *risk_user_id(const risk_user *user);
/** @brief Whether MFA is registered. @param[in] user the user. @returns 0 or 1. @since 0.1 */
RISK_API int risk_user_mfa_registered(const risk_user *user);
/** @brief When MFA was registered. @param[in] user the user. @returns ms, or #RISK_TIME_NONE. @since 0.1 */
RISK_API int64_t risk_user_mfa_registered_at(const risk_user *user);
/** @brief Whether the account is deleted. @param[in] user the user. @returns 0 or 1. @since 0.1 */
RISK_API int risk_user_deleted(const risk_user *user);
/** @brief Whether a temporary password must be changed. @param[in] user the user. @returns 0 or 1. @since 0.1 */
RISK_API int risk_user_must_change_password(const risk_user *user);
/** @brief Whether an admin required a reset. @param[in] user the user. @returns 0 or 1. @since 0.1 */
RISK_API int risk_user_reset_required(const risk_user *user);
/** @brief Time of the last remediation. @param[in] user the user. @returns ms, or #RISK_TIME_NONE. @since 0.1 */
RISK_API int64_t risk_user_remediated_at(const risk_user *user);
/** @brief The derived risk level. @param[in] user the user. @returns a #risk_level. @since 0.1 */
RISK_API risk_level risk_user_risk_level(const risk_user *user);
/** @brief The derived risk state. @param[in] user the user. @returns a #risk_state. @since 0.1 */
RISK_API risk_state risk_user_risk_state(const risk_user *user);
/** @brief The derived risk detail. @param[in] user the user. @returns a #risk_detail. @since 0.1 */
RISK_API risk_detail risk_user_risk_detail(const risk_user *user);
/** @brief Time of the last change of level, state or detail. @param[in] user the user. @returns ms, or #RISK_TIME_NONE. @since 0.1 */
RISK_API int64_t risk_user_risk_updated_at(const risk_user *user);
/** @brief The derived score (R-SC-3). @param[in] user the user. @returns the score. @since 0.1 */
RISK_API uint64_t risk_user_score(const risk_user *user);
/** @brief detected_at of the earliest active event (R-PO-11). @param[in] user the user. @returns ms, or #RISK_TIME_NONE without active events. @since 0.1 */
RISK_API int64_t risk_user_risk_since(const risk_user *user);
/** @brief When aging next closes one of the user's counted events: the earliest time the level, the score or risk_since (which R-PO-11 decides on) can change by aging, so a sign-in after it runs the catch-up first (SPEC §4). The level itself may stay. @param[in] user the user. @returns ms, or #RISK_TIME_NONE for never. @since 0.1 */
RISK_API int64_t risk_user_next_change_at(const risk_user *user);
/** @brief Number of active events. @param[in] user the user. @returns the count. @since 0.1 */
RISK_API uint32_t risk_user_active_events(const risk_user *user);

/**
 * @brief Set MFA registration.
 * @param[in,out] user the user.
 * @param[in] registered 0 or 1.
 * @param[in] at when it was registered, or #RISK_TIME_NONE to let the
 *            engine stamp the upsert's time (R-PO-11); ignored when
 *            registered is 0.
 * @retval RISK_OK set. @retval RISK_EINVAL NULL user, registered not 0/1,
 *         or time out of range.
 * @since 0.1
 */
RISK_API int risk_user_set_mfa_registered(risk_user *user, int registered, int64_t at);
/**
 * @brief Set the deleted flag.
 * @param[in,out] user the user. @param[in] deleted 0 or 1.
 * @retval RISK_OK set. @retval RISK_EINVAL NULL user or not 0/1.
 * @since 0.1
 */
RISK_API int risk_user_set_deleted(risk_user *user, int deleted);

/**
 * @brief Create an active event (R-EV-1).
 * @param[out] out the new event, owned by the caller.
 * @param[in] id the event id (see risk_id_check()).
 * @param[in] user_id the user it belongs to.
 * @param[in] type 1–64 bytes of `[A-Za-z0-9_.-]`.
 * @param[in] level low, medium or high.
 * @param[in] detected_at 0 ≤ t < #RISK_TIME_MAX.
 * @retval RISK_OK created. @retval RISK_EINVAL an argument is invalid.
 * @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_event_new(risk_event **out, const char *id, const char *user_id,
                            const char *type, risk_level level, int64_t detected_at);
/**
 * @brief Copy an event.
 * @param[out] out the copy. @param[in] event the event.
 * @retval RISK_OK copied. @retval RISK_EINVAL NULL argument.
 * @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_event_dup(risk_event **out, const risk_event *event);
/** @brief Free an event; NULL is accepted. @param[in] event the event. @since 0.1 */
RISK_API void risk_event_free(risk_event *event);

/** @brief The id. @param[in] event the event. @returns borrowed string. @since 0.1 */
RISK_API const char *risk_event_id(const risk_event *event);
/** @brief The user id. @param[in] event the event. @returns borrowed string. @since 0.1 */
RISK_API const char *risk_event_user_id(const risk_event *event);
/** @brief The detection type. @param[in] event the event. @returns borrowed string. @since 0.1 */
RISK_API const char *risk_event_type(const risk_event *event);
/** @brief The level. @param[in] event the event. @returns a #risk_level. @since 0.1 */
RISK_API risk_level risk_event_level(const risk_event *event);
/** @brief Detection time. @param[in] event the event. @returns ms. @since 0.1 */
RISK_API int64_t risk_event_detected_at(const risk_event *event);
/** @brief Timing. @param[in] event the event. @returns a #risk_timing. @since 0.1 */
RISK_API risk_timing risk_event_timing(const risk_event *event);
/** @brief IP address. @param[in] event the event. @returns borrowed string or NULL. @since 0.1 */
RISK_API const char *risk_event_ip(const risk_event *event);
/** @brief Location. @param[in] event the event. @returns borrowed string or NULL. @since 0.1 */
RISK_API const char *risk_event_location(const risk_event *event);
/** @brief Source. @param[in] event the event. @returns borrowed string or NULL. @since 0.1 */
RISK_API const char *risk_event_source(const risk_event *event);
/** @brief Active or closed. @param[in] event the event. @returns a #risk_event_state. @since 0.1 */
RISK_API risk_event_state risk_event_state_get(const risk_event *event);
/** @brief Close reason. @param[in] event the event. @returns a #risk_close_reason. @since 0.1 */
RISK_API risk_close_reason risk_event_close_reason(const risk_event *event);
/** @brief Closing time. @param[in] event the event. @returns ms, or #RISK_TIME_NONE while active. @since 0.1 */
RISK_API int64_t risk_event_closed_at(const risk_event *event);
/** @brief Closing actor. @param[in] event the event. @returns borrowed string, or NULL while active. @since 0.1 */
RISK_API const char *risk_event_closed_by(const risk_event *event);
/** @brief Admin note. @param[in] event the event. @returns borrowed string or NULL. @since 0.1 */
RISK_API const char *risk_event_note(const risk_event *event);

/**
 * @brief Set the timing.
 * @param[in,out] event the event. @param[in] timing a #risk_timing.
 * @retval RISK_OK set. @retval RISK_EINVAL NULL event or out of range.
 * @since 0.1
 */
RISK_API int risk_event_set_timing(risk_event *event, risk_timing timing);
/**
 * @brief Set the IP address (≤ 256 bytes UTF-8; NULL clears).
 * @param[in,out] event the event. @param[in] ip the text or NULL.
 * @retval RISK_OK set. @retval RISK_EINVAL invalid. @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_event_set_ip(risk_event *event, const char *ip);
/**
 * @brief Set the location (≤ 256 bytes UTF-8; NULL clears).
 * @param[in,out] event the event. @param[in] location the text or NULL.
 * @retval RISK_OK set. @retval RISK_EINVAL invalid. @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_event_set_location(risk_event *event, const char *location);
/**
 * @brief Set the source (≤ 256 bytes UTF-8; NULL clears).
 * @param[in,out] event the event. @param[in] source the text or NULL.
 * @retval RISK_OK set. @retval RISK_EINVAL invalid. @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_event_set_source(risk_event *event, const char *source);
/**
 * @brief Set the level (low, medium or high).
 * @param[in,out] event the event. @param[in] level the level.
 * @retval RISK_OK set. @retval RISK_EINVAL NULL event or invalid level.
 * @since 0.1
 */
RISK_API int risk_event_set_level(risk_event *event, risk_level level);
/**
 * @brief Set the detection time.
 * @param[in,out] event the event. @param[in] detected_at 0 ≤ t < #RISK_TIME_MAX.
 * @retval RISK_OK set. @retval RISK_EINVAL NULL event or out of range.
 * @since 0.1
 */
RISK_API int risk_event_set_detected_at(risk_event *event, int64_t detected_at);
/**
 * @brief Set the admin note (≤ 1024 bytes UTF-8; NULL clears).
 * @param[in,out] event the event. @param[in] note the text or NULL.
 * @retval RISK_OK set. @retval RISK_EINVAL invalid. @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_event_set_note(risk_event *event, const char *note);

/**
 * @brief Create a policy: mode on, all users included, none excluded.
 * @param[out] out the new policy, owned by the caller.
 * @param[in] name unique name (see risk_id_check()).
 * @param[in] threshold low, medium or high.
 * @param[in] control a #risk_control.
 * @retval RISK_OK created. @retval RISK_EINVAL invalid argument.
 * @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_policy_new(risk_policy **out, const char *name, risk_level threshold,
                             risk_control control);
/**
 * @brief Copy a policy.
 * @param[out] out the copy. @param[in] policy the policy.
 * @retval RISK_OK copied. @retval RISK_EINVAL NULL argument. @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_policy_dup(risk_policy **out, const risk_policy *policy);
/** @brief Free a policy; NULL is accepted. @param[in] policy the policy. @since 0.1 */
RISK_API void risk_policy_free(risk_policy *policy);
/** @brief The name. @param[in] policy the policy. @returns borrowed string. @since 0.1 */
RISK_API const char *risk_policy_name(const risk_policy *policy);
/** @brief The mode. @param[in] policy the policy. @returns a #risk_policy_mode. @since 0.1 */
RISK_API risk_policy_mode risk_policy_mode_get(const risk_policy *policy);
/** @brief The threshold. @param[in] policy the policy. @returns a #risk_level. @since 0.1 */
RISK_API risk_level risk_policy_threshold(const risk_policy *policy);
/** @brief The control. @param[in] policy the policy. @returns a #risk_control. @since 0.1 */
RISK_API risk_control risk_policy_control(const risk_policy *policy);
/** @brief Whether all users are included. @param[in] policy the policy. @returns 1 if the include list is empty (all users), else 0. @since 0.1 */
RISK_API int risk_policy_includes_all(const risk_policy *policy);
/** @brief Number of included user ids. @param[in] policy the policy. @returns the count. @since 0.1 */
RISK_API size_t risk_policy_include_count(const risk_policy *policy);
/** @brief An included user id. @param[in] policy the policy. @param[in] i index. @returns borrowed string, NULL if out of range. @since 0.1 */
RISK_API const char *risk_policy_include_at(const risk_policy *policy, size_t i);
/** @brief Number of excluded user ids. @param[in] policy the policy. @returns the count. @since 0.1 */
RISK_API size_t risk_policy_exclude_count(const risk_policy *policy);
/** @brief An excluded user id. @param[in] policy the policy. @param[in] i index. @returns borrowed string, NULL if out of range. @since 0.1 */
RISK_API const char *risk_policy_exclude_at(const risk_policy *policy, size_t i);
/**
 * @brief Whether the policy applies to a user id (included and not excluded).
 * @param[in] policy the policy. @param[in] user_id the user id.
 * @returns 1 or 0 (0 also for NULL arguments).
 * @since 0.1
 */
RISK_API int risk_policy_applies_to(const risk_policy *policy, const char *user_id);
/**
 * @brief Set the mode.
 * @param[in,out] policy the policy. @param[in] mode a #risk_policy_mode.
 * @retval RISK_OK set. @retval RISK_EINVAL invalid.
 * @since 0.1
 */
RISK_API int risk_policy_set_mode(risk_policy *policy, risk_policy_mode mode);
/**
 * @brief Set the threshold.
 * @param[in,out] policy the policy. @param[in] threshold low, medium or high.
 * @retval RISK_OK set. @retval RISK_EINVAL invalid.
 * @since 0.1
 */
RISK_API int risk_policy_set_threshold(risk_policy *policy, risk_level threshold);
/**
 * @brief Set the control.
 * @param[in,out] policy the policy. @param[in] control a #risk_control.
 * @retval RISK_OK set. @retval RISK_EINVAL invalid.
 * @since 0.1
 */
RISK_API int risk_policy_set_control(risk_policy *policy, risk_control control);
/**
 * @brief Add a user id to the include list (adding the same id twice is a no-op).
 *
 * A list holds at most 100,000 ids.
 * @param[in,out] policy the policy. @param[in] user_id the id.
 * @retval RISK_OK added. @retval RISK_EINVAL invalid id, or the list is full.
 * @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_policy_include_add(risk_policy *policy, const char *user_id);
/**
 * @brief Add a user id to the exclude list (adding the same id twice is a no-op).
 *
 * A list holds at most 100,000 ids.
 * @param[in,out] policy the policy. @param[in] user_id the id.
 * @retval RISK_OK added. @retval RISK_EINVAL invalid id, or the list is full.
 * @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_policy_exclude_add(risk_policy *policy, const char *user_id);

/** @brief Free a history item; NULL is accepted. @param[in] item the item. @since 0.1 */
RISK_API void risk_history_free(risk_history *item);
/**
 * @brief Copy a history item.
 * @param[out] out the copy. @param[in] item the item.
 * @retval RISK_OK copied. @retval RISK_EINVAL NULL argument. @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_history_dup(risk_history **out, const risk_history *item);
/** @brief Sequence number. @param[in] item the item. @returns the seq. @since 0.1 */
RISK_API uint64_t risk_history_seq(const risk_history *item);
/** @brief When. @param[in] item the item. @returns ms. @since 0.1 */
RISK_API int64_t risk_history_at(const risk_history *item);
/** @brief Who. @param[in] item the item. @returns borrowed string. @since 0.1 */
RISK_API const char *risk_history_actor(const risk_history *item);
/** @brief What. @param[in] item the item. @returns a #risk_history_action. @since 0.1 */
RISK_API risk_history_action risk_history_action_get(const risk_history *item);
/** @brief The user, or NULL for policy changes. @param[in] item the item. @returns borrowed string or NULL. @since 0.1 */
RISK_API const char *risk_history_user_id(const risk_history *item);
/** @brief The event, or NULL for user-wide actions. @param[in] item the item. @returns borrowed string or NULL. @since 0.1 */
RISK_API const char *risk_history_event_id(const risk_history *item);
/** @brief The policy name for policy changes, else NULL. @param[in] item the item. @returns borrowed string or NULL. @since 0.1 */
RISK_API const char *risk_history_policy(const risk_history *item);
/** @brief Level before. @param[in] item the item. @returns a #risk_level. @since 0.1 */
RISK_API risk_level risk_history_level_before(const risk_history *item);
/** @brief Level after. @param[in] item the item. @returns a #risk_level. @since 0.1 */
RISK_API risk_level risk_history_level_after(const risk_history *item);
/** @brief State before. @param[in] item the item. @returns a #risk_state. @since 0.1 */
RISK_API risk_state risk_history_state_before(const risk_history *item);
/** @brief State after. @param[in] item the item. @returns a #risk_state. @since 0.1 */
RISK_API risk_state risk_history_state_after(const risk_history *item);
/** @brief Number of events the action changed. @param[in] item the item. @returns the count. @since 0.1 */
RISK_API uint32_t risk_history_changed(const risk_history *item);
/** @brief Note (for policy changes: the policy before and after). @param[in] item the item. @returns borrowed string or NULL. @since 0.1 */
RISK_API const char *risk_history_note(const risk_history *item);
/** @brief The chain hash (R-AU-1). @param[in] item the item. @returns 32 borrowed bytes. @since 0.1 */
RISK_API const uint8_t *risk_history_chain(const risk_history *item);

/** @} */

/* ------------------------------------------------------------------ */
/** @defgroup core Pure core: transitions, scoring, decisions
 *  Pure functions: no engine, no store, no clock, no I/O. Thread-safe.
 *  @{ */

/**
 * @brief The event state machine of SPEC §3 as a pure function.
 * @param[in] state current state. @param[in] reason current close reason.
 * @param[in] action the action.
 * @param[out] new_state the state after (unchanged on error).
 * @param[out] new_reason the reason after (unchanged on error).
 * @retval RISK_OK allowed. @retval RISK_ETRANSITION forbidden.
 * @retval RISK_EINVAL NULL output, value out of range, or an inconsistent
 *         (state, reason) pair.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_transition(risk_event_state state, risk_close_reason reason, risk_action action,
                             risk_event_state *new_state, risk_close_reason *new_reason);

/** @brief The version of #risk_scoring this header describes. */
#define RISK_SCORING_VERSION 1
/** @brief One day in milliseconds. */
#define RISK_DAY_MS INT64_C(86400000)

/** @brief An aging period for one detection type (R-SC-8). */
typedef struct risk_type_aging {
    const char *type; /**< Detection type, as risk_event_new() validates. */
    int64_t aging_ms; /**< Period in ms; 0 means never. */
} risk_type_aging;

/**
 * @brief Scoring parameters (R-SC-3, R-SC-7, R-SC-8).
 *
 * Initialise with risk_scoring_init() or #RISK_SCORING_INIT (the defaults:
 * weights 1/3/9, thresholds 1/3/9, aging low 180 days, medium and high
 * never).
 */
typedef struct risk_scoring {
    uint32_t version;          /**< #RISK_SCORING_VERSION. */
    uint32_t weight_low;       /**< Weight of a low event. */
    uint32_t weight_medium;    /**< Weight of a medium event. */
    uint32_t weight_high;      /**< Weight of a high event. */
    uint64_t threshold_low;    /**< Score at which the level is low (≥ 1). */
    uint64_t threshold_medium; /**< Score at which the level is medium. */
    uint64_t threshold_high;   /**< Score at which the level is high. */
    int64_t aging_low_ms;      /**< Aging period of low events; 0 never. */
    int64_t aging_medium_ms;   /**< Aging period of medium events; 0 never. */
    int64_t aging_high_ms;     /**< Aging period of high events; 0 never. */
    const risk_type_aging *type_aging; /**< Per-type overrides (borrowed). */
    uint32_t type_aging_count; /**< Entries in type_aging (≤ 1024). */
} risk_scoring;

/** @brief Static initialiser of #risk_scoring with the defaults. */
#define RISK_SCORING_INIT { RISK_SCORING_VERSION, 1, 3, 9, 1, 3, 9, \
    180 * RISK_DAY_MS, 0, 0, NULL, 0 }

/**
 * @brief Fill a #risk_scoring with the defaults.
 * @param[out] scoring the parameters.
 * @retval RISK_OK done. @retval RISK_EINVAL NULL.
 * @since 0.1
 */
RISK_API int risk_scoring_init(risk_scoring *scoring);

/**
 * @brief Validate scoring parameters (R-SC-7).
 * @param[in] scoring the parameters.
 * @retval RISK_OK valid. @retval RISK_EINVAL invalid (version, threshold
 *         order, all weights zero, threshold 0, negative aging, bad type or
 *         duplicate type override).
 * @since 0.1
 */
RISK_API int risk_scoring_check(const risk_scoring *scoring);

/**
 * @brief The aging period that applies to an event (R-SC-2, R-SC-8).
 * @param[in] scoring the parameters (NULL for the defaults).
 * @param[in] event the event.
 * @returns the period in ms, 0 for never (also on NULL event).
 * @since 0.1
 */
RISK_API int64_t risk_scoring_aging_for(const risk_scoring *scoring, const risk_event *event);

/** @brief The result of scoring: level, score and the next change by aging. */
typedef struct risk_score_result {
    uint32_t version;       /**< Set to 1 by the library. */
    uint32_t level;         /**< A #risk_level. */
    uint64_t score;         /**< Σ weights of counted events. */
    uint32_t counted;       /**< Events that counted. */
    uint32_t reserved;      /**< Zero. */
    int64_t risk_since;     /**< Earliest counted detected_at, or #RISK_TIME_NONE. */
    int64_t next_change_at; /**< When aging next drops an event, or #RISK_TIME_NONE. */
} risk_score_result;

/**
 * @brief Score a user's events at `now` (R-SC-1…4, R-SC-8).
 *
 * Active events count unless their aging period has passed at `now`
 * (detected_at + period ≤ now). Closed events never count.
 * @param[out] out the result.
 * @param[in] scoring the parameters (NULL for the defaults).
 * @param[in] events the events (any state); may be NULL when n is 0.
 * @param[in] n number of events.
 * @param[in] now the time of evaluation.
 * @retval RISK_OK scored. @retval RISK_EINVAL invalid argument or parameters.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_score(risk_score_result *out, const risk_scoring *scoring,
                        const risk_event *const *events, size_t n, int64_t now);

/** @brief The explanation of a score (R-SC-6). */
typedef struct risk_explanation risk_explanation;

/**
 * @brief Explain a score: each event, whether it counted, its contribution.
 * @param[out] out the explanation, owned by the caller.
 * @param[in] scoring the parameters (NULL for the defaults).
 * @param[in] events the events. @param[in] n their number.
 * @param[in] now the time of evaluation.
 * @retval RISK_OK done. @retval RISK_EINVAL invalid argument.
 * @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_explain(risk_explanation **out, const risk_scoring *scoring,
                          const risk_event *const *events, size_t n, int64_t now);
/** @brief Free an explanation; NULL is accepted. @param[in] ex the explanation. @since 0.1 */
RISK_API void risk_explanation_free(risk_explanation *ex);
/** @brief The summary. @param[in] ex the explanation. @returns borrowed result. @since 0.1 */
RISK_API const risk_score_result *risk_explanation_result(const risk_explanation *ex);
/** @brief When it was evaluated. @param[in] ex the explanation. @returns ms. @since 0.1 */
RISK_API int64_t risk_explanation_now(const risk_explanation *ex);
/** @brief Number of items (one per event given). @param[in] ex the explanation. @returns the count. @since 0.1 */
RISK_API size_t risk_explanation_count(const risk_explanation *ex);
/** @brief Event id of item i. @param[in] ex the explanation. @param[in] i index. @returns borrowed string, NULL if out of range. @since 0.1 */
RISK_API const char *risk_explanation_event_id(const risk_explanation *ex, size_t i);
/** @brief Detection type of item i. @param[in] ex the explanation. @param[in] i index. @returns borrowed string, NULL if out of range. @since 0.1 */
RISK_API const char *risk_explanation_type(const risk_explanation *ex, size_t i);
/** @brief Level of item i. @param[in] ex the explanation. @param[in] i index. @returns a #risk_level. @since 0.1 */
RISK_API risk_level risk_explanation_level(const risk_explanation *ex, size_t i);
/** @brief Whether item i counted. @param[in] ex the explanation. @param[in] i index. @returns 0 or 1. @since 0.1 */
RISK_API int risk_explanation_counted(const risk_explanation *ex, size_t i);
/** @brief Contribution of item i to the score. @param[in] ex the explanation. @param[in] i index. @returns the weight, 0 if not counted. @since 0.1 */
RISK_API uint64_t risk_explanation_contribution(const risk_explanation *ex, size_t i);
/** @brief Whether item i has aged out at `now`: active past its aging period, or closed by aging (reason #RISK_CLOSE_AGED). @param[in] ex the explanation. @param[in] i index. @returns 0 or 1. @since 0.1 */
RISK_API int risk_explanation_aged(const risk_explanation *ex, size_t i);
/** @brief When item i ages (or aged) out. @param[in] ex the explanation. @param[in] i index. @returns ms, or #RISK_TIME_NONE if it never ages. @since 0.1 */
RISK_API int64_t risk_explanation_ages_at(const risk_explanation *ex, size_t i);
/** @brief The aging period applied to item i (R-SC-8). @param[in] ex the explanation. @param[in] i index. @returns ms, 0 for never. @since 0.1 */
RISK_API int64_t risk_explanation_aging_ms(const risk_explanation *ex, size_t i);
/** @brief Whether item i's period is a per-type override (R-SC-8). @param[in] ex the explanation. @param[in] i index. @returns 0 or 1. @since 0.1 */
RISK_API int risk_explanation_type_override(const risk_explanation *ex, size_t i);
/** @brief State of item i's event. @param[in] ex the explanation. @param[in] i index. @returns a #risk_event_state. @since 0.1 */
RISK_API risk_event_state risk_explanation_state(const risk_explanation *ex, size_t i);

/** @brief A sign-in verdict. Reusable: filling it again reuses its memory. */
typedef struct risk_verdict risk_verdict;

/**
 * @brief Create an empty verdict (decision block, reason store_error).
 * @param[out] out the verdict, owned by the caller.
 * @retval RISK_OK created. @retval RISK_EINVAL NULL. @retval RISK_ENOMEM out of memory.
 * @since 0.1
 */
RISK_API int risk_verdict_new(risk_verdict **out);
/** @brief Free a verdict; NULL is accepted. @param[in] v the verdict. @since 0.1 */
RISK_API void risk_verdict_free(risk_verdict *v);
/** @brief The enforced decision. @param[in] v the verdict. @returns a #risk_decision. @since 0.1 */
RISK_API risk_decision risk_verdict_decision(const risk_verdict *v);
/** @brief The reason code. @param[in] v the verdict. @returns a #risk_reason. @since 0.1 */
RISK_API risk_reason risk_verdict_reason(const risk_verdict *v);
/** @brief The deciding policy. @param[in] v the verdict. @returns borrowed name, or NULL if none. @since 0.1 */
RISK_API const char *risk_verdict_policy(const risk_verdict *v);
/** @brief The user's level used. @param[in] v the verdict. @returns a #risk_level. @since 0.1 */
RISK_API risk_level risk_verdict_level(const risk_verdict *v);
/** @brief The user id decided for. @param[in] v the verdict. @returns borrowed string, "" before a decision. @since 0.1 */
RISK_API const char *risk_verdict_user_id(const risk_verdict *v);
/** @brief The time of the decision. @param[in] v the verdict. @returns ms, #RISK_TIME_NONE before a decision. @since 0.1 */
RISK_API int64_t risk_verdict_at(const risk_verdict *v);
/** @brief Number of report-only policies that fired. @param[in] v the verdict. @returns the count. @since 0.1 */
RISK_API size_t risk_verdict_report_only_count(const risk_verdict *v);
/** @brief Name of report-only policy i. @param[in] v the verdict. @param[in] i index. @returns borrowed string, NULL if out of range. @since 0.1 */
RISK_API const char *risk_verdict_report_only_policy(const risk_verdict *v, size_t i);
/** @brief What report-only policy i would decide. @param[in] v the verdict. @param[in] i index. @returns a #risk_decision. @since 0.1 */
RISK_API risk_decision risk_verdict_report_only_decision(const risk_verdict *v, size_t i);
/** @brief Reason of report-only policy i. @param[in] v the verdict. @param[in] i index. @returns a #risk_reason. @since 0.1 */
RISK_API risk_reason risk_verdict_report_only_reason(const risk_verdict *v, size_t i);

/**
 * @brief Decide a sign-in from policies, a user and its level (R-PO-1…8, R-PO-11).
 *
 * Pure: reads only its arguments. Policies in mode off are skipped. MFA
 * counts only if registered at or before the user's risk_since (R-PO-11).
 * @param[out] v the verdict to fill (its previous content is replaced).
 * @param[in] policies the policies; may be NULL when n is 0.
 * @param[in] n number of policies.
 * @param[in] user the user, or NULL for a user unknown to the store (R-PO-8).
 * @param[in] level the user's current level.
 * @param[in] now the time of the decision (recorded in the verdict).
 * @retval RISK_OK decided. @retval RISK_EINVAL invalid argument (the verdict
 *         is then block/store_error). @retval RISK_ENOMEM out of memory
 *         (same).
 * @since 0.1
 */
RISK_API int risk_decide(risk_verdict *v, const risk_policy *const *policies, size_t n,
                         const risk_user *user, risk_level level, int64_t now);

/** @} */

/* ------------------------------------------------------------------ */
/** @defgroup engine Engine
 *  @{ */

/** @brief The engine: operations over a store. Thread-safe. */
typedef struct risk_engine risk_engine;
/** @brief A store: a callback table, see librisk/store.h. */
typedef struct risk_store risk_store;

/** @brief The version of #risk_engine_options this header describes. */
#define RISK_ENGINE_OPTIONS_VERSION 1

/** @brief Clock callback: the current time in ms since the epoch. */
typedef int64_t (*risk_clock_fn)(void *userdata);
/**
 * @brief False-positive feedback hook (R-IN-2), called after commit.
 * `withdrawn` is 0 when the event was marked false positive, 1 when a
 * false-positive event was reactivated.
 */
typedef void (*risk_feedback_fn)(const risk_event *event, int withdrawn, void *userdata);
/**
 * @brief User-change hook (R-OP-8), called after commit when a user's level,
 * state or detail changed. `before` is NULL for a new user.
 */
typedef void (*risk_user_change_fn)(const risk_user *before, const risk_user *after,
                                    void *userdata);

/** @brief Engine options; initialise with risk_engine_options_init(). */
typedef struct risk_engine_options {
    uint32_t version;               /**< #RISK_ENGINE_OPTIONS_VERSION. */
    uint32_t refuse_unknown_users;  /**< 1: ingest for an unknown user is #RISK_ENOTFOUND (R-OP-2). */
    uint32_t temp_password_length;  /**< 12–128; 0 means 16 (R-PW-1). */
    uint32_t max_conflict_retries;  /**< Retries on #RISK_ECONFLICT, at most 1000; 0 means 8. */
    const risk_scoring *scoring;    /**< Scoring parameters, copied; NULL for the defaults. */
    risk_clock_fn clock;            /**< NULL: the real UTC clock. */
    void *clock_userdata;           /**< For clock. */
    risk_feedback_fn feedback;      /**< Optional false-positive hook. */
    void *feedback_userdata;        /**< For feedback. */
    risk_user_change_fn user_changed; /**< Optional user-change hook. */
    void *user_changed_userdata;    /**< For user_changed. */
    const uint8_t *receipt_key;     /**< HMAC key for receipts (R-RC-1), copied; NULL: none. */
    size_t receipt_key_len;         /**< Its length (≥ 16 when set). */
} risk_engine_options;

/** @brief Static initialiser of #risk_engine_options. */
#define RISK_ENGINE_OPTIONS_INIT { RISK_ENGINE_OPTIONS_VERSION, 0, 0, 0, NULL, NULL, NULL, \
    NULL, NULL, NULL, NULL, NULL, 0 }

/**
 * @brief Fill engine options with the defaults.
 * @param[out] opts the options.
 * @retval RISK_OK done. @retval RISK_EINVAL NULL.
 * @note Thread-safe: reads only its arguments and writes only its outputs.
 * @since 0.1
 */
RISK_API int risk_engine_options_init(risk_engine_options *opts);

/**
 * @brief Create an engine over a store.
 *
 * The engine takes the store: from success on it calls the store's close
 * callback when freed. On failure the store is left to the caller.
 * @param[out] out the engine, owned by the caller.
 * @param[in] store the callback table, copied (see librisk/store.h).
 * @param[in] opts options, or NULL for the defaults.
 * @retval RISK_OK created. @retval RISK_EINVAL invalid argument, version,
 *         option out of range or scoring parameters.
 * @retval RISK_ENOMEM out of memory.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_new(risk_engine **out, const risk_store *store,
                             const risk_engine_options *opts);
/**
 * @brief Free an engine and close its store; NULL is accepted.
 * @param[in] engine the engine; no other thread may use it.
 * @since 0.1
 */
RISK_API void risk_engine_free(risk_engine *engine);

/**
 * @brief The engine's current time (its clock).
 * @param[in] engine the engine.
 * @returns ms since the epoch.
 * @note Thread-safe. @since 0.1
 */
RISK_API int64_t risk_engine_now(const risk_engine *engine);

/**
 * @brief Create or update a user (R-OP-4): only mfa_registered (with its
 *        time) and deleted are taken from `user`.
 *
 * Registering MFA with #RISK_TIME_NONE as time stamps the engine's now.
 * @param[in] engine the engine. @param[in] actor who (R-OP-0).
 * @param[in] user the desired flags.
 * @retval RISK_OK done. @retval RISK_EINVAL invalid argument.
 * @retval RISK_ENOMEM, RISK_EIO, RISK_ESTORE, RISK_ECONFLICT store failures (rolled back).
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_upsert_user(risk_engine *engine, const char *actor, const risk_user *user);

/** @brief Flag of risk_engine_ingest(): update an existing active event (R-OP-7). */
#define RISK_INGEST_UPDATE 1u

/**
 * @brief Ingest a detection (R-OP-1…3, R-OP-7, R-US-1).
 *
 * Only the detection fields of `event` are used (id, user, type, level,
 * detected_at, timing, ip, location, source); it arrives active. Ids
 * beginning `librisk:` are reserved (#RISK_EINVAL).
 * @param[in] engine the engine. @param[in] actor who.
 * @param[in] event the detection. @param[in] flags 0 or #RISK_INGEST_UPDATE.
 * @retval RISK_OK ingested, or the same event was already there.
 * @retval RISK_EEXISTS a different event has this id.
 * @retval RISK_ETRANSITION update of a closed event.
 * @retval RISK_ENOTFOUND unknown user and refuse_unknown_users is set.
 * @retval RISK_EINVAL invalid argument. @retval RISK_ENOMEM out of memory.
 * @retval RISK_EIO, RISK_ESTORE, RISK_ECONFLICT store failures (rolled back).
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_ingest(risk_engine *engine, const char *actor, const risk_event *event,
                                uint32_t flags);

/**
 * @brief Ingest many detections, each atomic on its own.
 * @param[in] engine the engine. @param[in] actor who.
 * @param[in] events the detections. @param[in] n their number.
 * @param[in] flags as risk_engine_ingest().
 * @param[out] results n result codes (as risk_engine_ingest()).
 * @returns the number of items that failed (≥ 0; INT_MAX stands for
 *          INT_MAX or more), or #RISK_EINVAL for
 *          invalid arguments (then nothing was tried).
 * @note An item's result may be #RISK_ECONFLICT: the store refused its
 *       commit as a conflict on every attempt (engines or processes sharing
 *       the store); that item changed nothing.
 * @note Before each 16 items the store is told their users and event ids
 *       (risk_store.prefetch_users and prefetch_events, where it has them),
 *       so that the built-in stores fetch them from memory at once: the
 *       same ingests cost less than one call each (docs/performance.md).
 * @note On a journal in #RISK_DURABILITY_FULL the items of a call share
 *       their syncs: each item commits on its own, and the call waits for
 *       the disk once per 16 items instead of once per item. An item's
 *       result is #RISK_OK only once its commit is durable; a failed write
 *       or sync fails (#RISK_EIO) every item whose commit it left off the
 *       disk, as it fails a single commit, and every later item of those
 *       16 that succeeded without a commit of its own (it may rest on a
 *       lost one), as the failed journal would have refused it. With a
 *       `feedback` or `user_changed` hook
 *       (which run once a commit is durable) each item waits for its own
 *       sync.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_ingest_bulk(risk_engine *engine, const char *actor,
                                     const risk_event *const *events, size_t n, uint32_t flags,
                                     int *results);

/**
 * @brief Decide a sign-in (R-PO-1…11). Reads the user and the cached
 *        policies, no event, unless aging is due (then it first runs the
 *        user's aging catch-up as its own operation).
 * @param[in] engine the engine. @param[in] user_id the user.
 * @param[out] verdict filled; on a store failure it is block/store_error.
 * @retval RISK_OK decided. @retval RISK_EINVAL invalid argument.
 * @retval RISK_EIO, RISK_ESTORE, RISK_ENOMEM failures (verdict is block, R-PO-9).
 * @retval RISK_ECONFLICT an aging catch-up, or the read of a receipt's
 *         events, met a conflict on every attempt (another engine or process
 *         sharing the store kept changing the user); the verdict is block.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_sign_in(risk_engine *engine, const char *user_id, risk_verdict *verdict);

/**
 * @brief Decide many sign-ins: each as risk_engine_sign_in() decides it.
 *
 * For a host that serves sign-ins in batches (a queue of requests, a
 * replay, a what-if over many users): the store is hinted the users ahead
 * of their lookups (`prefetch_users` in #risk_store), so that the memory
 * waits of many lookups overlap; on the built-in stores that makes a
 * decision several times cheaper than a call of risk_engine_sign_in()
 * each once the users no longer fit the processor's caches
 * (docs/performance.md). The users are decided in order; the clock is read
 * once per few users, so the decisions of one call may share a time.
 * @param[in] engine the engine. @param[in] user_ids n user ids.
 * @param[in] n their number (0: nothing to do).
 * @param[out] verdicts n verdicts, verdicts[i] for user_ids[i]; a failed
 *             sign-in leaves block there (R-PO-9).
 * @param[out] results n result codes, as risk_engine_sign_in() returns.
 * @returns the number of sign-ins that failed (≥ 0; INT_MAX stands for
 *          INT_MAX or more), or #RISK_EINVAL for
 *          a NULL engine or array (then nothing was tried and every verdict
 *          given is block).
 * @note An item's result may be #RISK_ECONFLICT, as risk_engine_sign_in()
 *       returns it; that item's verdict is block.
 * @note Thread-safe, as risk_engine_sign_in(); verdicts must not be shared
 *       with another thread during the call. @since 0.1
 */
RISK_API int risk_engine_sign_in_bulk(risk_engine *engine, const char *const *user_ids, size_t n,
                                      risk_verdict *const *verdicts, int *results);

/**
 * @brief Report a password change (R-PO-10, R-PO-11).
 * @param[in] engine the engine. @param[in] actor who.
 * @param[in] user_id the user. @param[in] kind a #risk_password_change.
 * @retval RISK_OK done. @retval RISK_ENOTFOUND unknown user.
 * @retval RISK_EINVAL invalid argument. @retval RISK_ENOMEM, RISK_EIO,
 *         RISK_ESTORE, RISK_ECONFLICT failures (rolled back).
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_password_changed(risk_engine *engine, const char *actor,
                                          const char *user_id, risk_password_change kind);

/**
 * @brief Generate a temporary password (R-PW-1): closes all active events
 *        as remediated, sets must_change_password.
 * @param[in] engine the engine. @param[in] actor who. @param[in] user_id the user.
 * @param[out] buf receives the NUL-terminated password; never stored.
 * @param[in] cap size of buf (≥ length + 1).
 * @retval RISK_OK done. @retval RISK_ERANGE buf too small (nothing changed).
 * @retval RISK_ENOTFOUND unknown user. @retval RISK_EDELETED deleted user.
 * @retval RISK_EIO the random source failed. @retval RISK_EINVAL invalid argument.
 * @retval RISK_ECONFLICT the store refused the commit as a conflict on every
 *         attempt (max_conflict_retries; another engine or process sharing
 *         the store kept changing the same records): nothing changed.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_temporary_password(risk_engine *engine, const char *actor,
                                            const char *user_id, char *buf, size_t cap);

/**
 * @brief Require the user to reset the password (R-PW-2, R-PW-3).
 * @param[in] engine the engine. @param[in] actor who. @param[in] user_id the user.
 * @retval RISK_OK done. @retval RISK_ENOMFA not MFA-registered (R-PO-11 sense).
 * @retval RISK_EDELETED deleted. @retval RISK_ENOTFOUND unknown user.
 * @retval RISK_EINVAL invalid argument.
 * @retval RISK_ECONFLICT the store refused the commit as a conflict on every
 *         attempt (max_conflict_retries; another engine or process sharing
 *         the store kept changing the same records): nothing changed.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_require_reset(risk_engine *engine, const char *actor,
                                       const char *user_id);

/**
 * @brief Dismiss all the user's risk (R-DI-1…3).
 * @param[in] engine the engine. @param[in] actor who. @param[in] user_id the user.
 * @param[in] note optional note, or NULL.
 * @param[out] closed optional: number of events closed.
 * @retval RISK_OK done (also with 0 closed). @retval RISK_ENOTFOUND unknown user.
 * @retval RISK_EINVAL invalid argument.
 * @retval RISK_ECONFLICT the store refused the commit as a conflict on every
 *         attempt (max_conflict_retries; another engine or process sharing
 *         the store kept changing the same records): nothing changed.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_dismiss(risk_engine *engine, const char *actor, const char *user_id,
                                 const char *note, uint32_t *closed);

/**
 * @brief Dismiss all risk of many users, each atomic on its own (R-DI-4).
 * @param[in] engine the engine. @param[in] actor who.
 * @param[in] user_ids the users. @param[in] n their number. @param[in] note optional.
 * @param[out] results n result codes. @param[out] closed optional: n counts.
 * @returns the number of users that failed (≥ 0; INT_MAX stands for
 *          INT_MAX or more), or #RISK_EINVAL (nothing tried).
 * @note An item's result may be #RISK_ECONFLICT: the store refused its
 *       commit as a conflict on every attempt (engines or processes sharing
 *       the store); that item changed nothing.
 * @note Before each 16 users the store is told them
 *       (risk_store.prefetch_users, where it has it), and on a journal in
 *       #RISK_DURABILITY_FULL the items share their syncs, as
 *       risk_engine_ingest_bulk() does.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_dismiss_bulk(risk_engine *engine, const char *actor,
                                      const char *const *user_ids, size_t n, const char *note,
                                      int *results, uint32_t *closed);

/**
 * @brief Resolve one active event (R-EV-2, R-IN-1).
 * @param[in] engine the engine. @param[in] actor who. @param[in] event_id the event.
 * @param[in] note optional note.
 * @retval RISK_OK done. @retval RISK_ETRANSITION not allowed (R-EV-5, R-EV-8).
 * @retval RISK_ENOTFOUND unknown event. @retval RISK_EINVAL invalid argument.
 * @retval RISK_ECONFLICT the store refused the commit as a conflict on every
 *         attempt (max_conflict_retries; another engine or process sharing
 *         the store kept changing the same records): nothing changed.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_resolve(risk_engine *engine, const char *actor, const char *event_id,
                                 const char *note);
/**
 * @brief Mark one active event false positive (R-EV-2, R-IN-2): calls the
 *        feedback hook after commit.
 * @param[in] engine the engine. @param[in] actor who. @param[in] event_id the event.
 * @param[in] note optional note.
 * @retval RISK_OK done. @retval RISK_ETRANSITION not allowed.
 * @retval RISK_ENOTFOUND unknown event. @retval RISK_EINVAL invalid argument.
 * @retval RISK_ECONFLICT the store refused the commit as a conflict on every
 *         attempt (max_conflict_retries; another engine or process sharing
 *         the store kept changing the same records): nothing changed.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_false_positive(risk_engine *engine, const char *actor,
                                        const char *event_id, const char *note);
/**
 * @brief Ignore one active event (R-EV-2): the note is required.
 * @param[in] engine the engine. @param[in] actor who. @param[in] event_id the event.
 * @param[in] note non-empty note.
 * @retval RISK_OK done. @retval RISK_EINVAL no note or invalid argument.
 * @retval RISK_ETRANSITION not allowed. @retval RISK_ENOTFOUND unknown event.
 * @retval RISK_ECONFLICT the store refused the commit as a conflict on every
 *         attempt (max_conflict_retries; another engine or process sharing
 *         the store kept changing the same records): nothing changed.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_ignore(risk_engine *engine, const char *actor, const char *event_id,
                                const char *note);
/**
 * @brief Reactivate a manually closed event (R-EV-3, R-EV-4, R-EV-7).
 * @param[in] engine the engine. @param[in] actor who. @param[in] event_id the event.
 * @param[in] note optional note.
 * @retval RISK_OK done. @retval RISK_ETRANSITION not allowed.
 * @retval RISK_ENOTFOUND unknown event. @retval RISK_EINVAL invalid argument.
 * @retval RISK_ECONFLICT the store refused the commit as a conflict on every
 *         attempt (max_conflict_retries; another engine or process sharing
 *         the store kept changing the same records): nothing changed.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_reactivate(risk_engine *engine, const char *actor,
                                    const char *event_id, const char *note);
/**
 * @brief Confirm a user compromised (R-US-3, R-SC-5).
 * @param[in] engine the engine. @param[in] actor who. @param[in] user_id the user.
 * @retval RISK_OK done. @retval RISK_ENOTFOUND unknown user.
 * @retval RISK_EINVAL invalid argument.
 * @retval RISK_ECONFLICT the store refused the commit as a conflict on every
 *         attempt (max_conflict_retries; another engine or process sharing
 *         the store kept changing the same records): nothing changed.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_confirm_compromised(risk_engine *engine, const char *actor,
                                             const char *user_id);
/**
 * @brief Confirm a user safe (R-US-4): closes active events as false positive.
 * @param[in] engine the engine. @param[in] actor who. @param[in] user_id the user.
 * @retval RISK_OK done. @retval RISK_ETRANSITION the user is confirmed compromised.
 * @retval RISK_ENOTFOUND unknown user. @retval RISK_EINVAL invalid argument.
 * @retval RISK_ECONFLICT the store refused the commit as a conflict on every
 *         attempt (max_conflict_retries; another engine or process sharing
 *         the store kept changing the same records): nothing changed.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_confirm_safe(risk_engine *engine, const char *actor,
                                      const char *user_id);

/**
 * @brief Add or replace a policy (R-OP-6).
 * @param[in] engine the engine. @param[in] actor who. @param[in] policy the policy, copied.
 * @retval RISK_OK done. @retval RISK_EINVAL invalid argument.
 * @retval RISK_ECONFLICT the store refused the commit as a conflict on every
 *         attempt (max_conflict_retries; another engine or process sharing
 *         the store kept changing the same records): nothing changed.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_policy_set(risk_engine *engine, const char *actor,
                                    const risk_policy *policy);
/**
 * @brief Remove a policy (R-OP-6).
 * @param[in] engine the engine. @param[in] actor who. @param[in] name the policy.
 * @retval RISK_OK done. @retval RISK_ENOTFOUND no such policy.
 * @retval RISK_EINVAL invalid argument.
 * @retval RISK_ECONFLICT the store refused the commit as a conflict on every
 *         attempt (max_conflict_retries; another engine or process sharing
 *         the store kept changing the same records): nothing changed.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_policy_remove(risk_engine *engine, const char *actor, const char *name);

/** @brief Visitor of policies: return 0 to go on, anything else stops and is returned. */
typedef int (*risk_policy_visit_fn)(const risk_policy *policy, void *userdata);
/** @brief Visitor of users: return 0 to go on, anything else stops and is returned. */
typedef int (*risk_user_visit_fn)(const risk_user *user, void *userdata);
/** @brief Visitor of events: return 0 to go on, anything else stops and is returned. */
typedef int (*risk_event_visit_fn)(const risk_event *event, void *userdata);
/** @brief Visitor of history items: return 0 to go on, anything else stops and is returned. */
typedef int (*risk_history_visit_fn)(const risk_history *item, void *userdata);

/**
 * @brief Visit the policies, by name.
 * @param[in] engine the engine. @param[in] fn the visitor. @param[in] userdata for fn.
 * @returns #RISK_OK, a failure code, or the visitor's non-zero value.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_policies(risk_engine *engine, risk_policy_visit_fn fn, void *userdata);

/**
 * @brief Drop the engine's cache of the stored policies: the next sign-in
 *        reads them from the store again.
 *
 * Sign-ins decide from policies the engine caches; the engine drops the
 * cache itself when it changes a policy (R-OP-6). Engines sharing one of
 * the built-in stores (memory, journal) follow each other's changes by
 * themselves: each sign-in compares the store's count of policy changes
 * with the one its cache was loaded at. A host store has no such count:
 * engines sharing one (R-ST-6) see another engine's change once the host,
 * having learnt it from its store, calls this (the Python binding does,
 * before each sign-in, for host stores with a policy generation, such as
 * its SQLite store).
 * @param[in] engine the engine.
 * @retval RISK_OK done. @retval RISK_EINVAL NULL engine.
 * @note Thread-safe: a sign-in running at the same time decides under the
 *       policies before or after, never a mix. Not from inside a store
 *       callback or a hook of the same engine: a sign-in holds the policy
 *       cache's lock while it reads the user, and this call waits for it.
 * @since 0.1
 */
RISK_API int risk_engine_policies_changed(risk_engine *engine);

/**
 * @brief Read one user as of now (level current with aging).
 * @param[out] out the user, owned by the caller.
 * @param[in] engine the engine. @param[in] user_id the user.
 * @retval RISK_OK found. @retval RISK_ENOTFOUND unknown. @retval RISK_EINVAL invalid argument.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_user(risk_user **out, risk_engine *engine, const char *user_id);
/**
 * @brief Read one event.
 * @param[out] out the event, owned by the caller.
 * @param[in] engine the engine. @param[in] event_id the event.
 * @retval RISK_OK found. @retval RISK_ENOTFOUND unknown. @retval RISK_EINVAL invalid argument.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_event(risk_event **out, risk_engine *engine, const char *event_id);

/** @brief Flag of risk_engine_events(): active events only. */
#define RISK_EVENTS_ACTIVE 1u

/**
 * @brief Visit a user's events by detected_at, then id (R-OP-5).
 * @param[in] engine the engine. @param[in] user_id the user.
 * @param[in] flags 0 or #RISK_EVENTS_ACTIVE. @param[in] fn the visitor.
 * @param[in] userdata for fn.
 * @returns #RISK_OK (also for an unknown user: nothing visited), a failure
 *          code, or the visitor's non-zero value.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_events(risk_engine *engine, const char *user_id, uint32_t flags,
                                risk_event_visit_fn fn, void *userdata);
/**
 * @brief Visit users at or above a level, highest first, then by id (R-OP-5).
 * @param[in] engine the engine. @param[in] min_level the level.
 * @param[in] fn the visitor. @param[in] userdata for fn.
 * @returns #RISK_OK, #RISK_EUNSUPPORTED (no list_users callback), a failure
 *          code, or the visitor's non-zero value.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_users(risk_engine *engine, risk_level min_level,
                               risk_user_visit_fn fn, void *userdata);
/**
 * @brief Visit a user's history in order (R-OP-5).
 * @param[in] engine the engine. @param[in] user_id the user.
 * @param[in] fn the visitor. @param[in] userdata for fn.
 * @returns #RISK_OK, #RISK_EUNSUPPORTED, a failure code, or the visitor's value.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_history(risk_engine *engine, const char *user_id,
                                 risk_history_visit_fn fn, void *userdata);
/**
 * @brief Visit the store-wide history from a sequence number on (R-OP-5).
 * @param[in] engine the engine. @param[in] since_seq first seq wanted (0: all).
 * @param[in] fn the visitor. @param[in] userdata for fn.
 * @returns #RISK_OK, #RISK_EUNSUPPORTED, a failure code, or the visitor's value.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_history_feed(risk_engine *engine, uint64_t since_seq,
                                      risk_history_visit_fn fn, void *userdata);
/**
 * @brief Explain a stored user's score now (R-SC-6).
 * @param[out] out the explanation, owned by the caller.
 * @param[in] engine the engine. @param[in] user_id the user.
 * @retval RISK_OK done. @retval RISK_ENOTFOUND unknown user.
 * @retval RISK_EINVAL invalid argument. @retval RISK_ENOMEM out of memory.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_explain(risk_explanation **out, risk_engine *engine,
                                 const char *user_id);
/**
 * @brief The aging sweep (R-SC-2): close every event past its period, as
 *        actor `system`, one atomic operation per user, in user id order.
 * @param[in] engine the engine.
 * @param[out] users optional: users changed. @param[out] events optional: events closed.
 * @retval RISK_OK done. @retval RISK_EUNSUPPORTED no list_users callback.
 * @retval RISK_ECONFLICT a user's catch-up met a conflict on every attempt
 *         (engines or processes sharing the store): the users before it
 *         were caught up, it and the rest were not.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_expire(risk_engine *engine, uint64_t *users, uint64_t *events);

/**
 * @brief Compact the store, if it supports it (journal: rewrite and rename).
 * @param[in] engine the engine.
 * @retval RISK_OK done. @retval RISK_EUNSUPPORTED not supported by the store.
 * @retval RISK_EREADONLY the journal is open read-only.
 * @retval RISK_EIO failure (the old file stays intact).
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_compact(risk_engine *engine);
/**
 * @brief Make every operation that has returned so far durable now.
 *
 * The journal store writes what it holds buffered and syncs the file
 * (`fdatasync`), whatever its durability: in `normal` it closes the
 * window a crash could lose before the next background sync, in `off`
 * it is the only sync. A bulk load in `normal` durability ends with it
 * to learn that everything reached the disk (riskctl's `event import`
 * does). With `full` durability there is nothing left to sync.
 * @param[in] engine the engine.
 * @retval RISK_OK durable. @retval RISK_EIO a write or the sync failed:
 *         the journal is poisoned; reopen it (in `normal` durability it
 *         holds what the last good sync covered, as after a failed
 *         background sync; `off` cuts nothing back).
 * @retval RISK_EREADONLY a read-only journal.
 * @retval RISK_EUNSUPPORTED the store has no such step (the memory
 *         store; a host store, whose commit is durable by contract).
 * @retval RISK_EINVAL NULL engine.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_sync(risk_engine *engine);
/**
 * @brief Write a consistent copy of the store to a path, if supported.
 *
 * The journal store first syncs its own file (full and normal
 * durability), so the copy holds only commits that are durable in the
 * journal too: none that a failing sync could still take back.
 * @param[in] engine the engine. @param[in] path destination file.
 * @retval RISK_OK done. @retval RISK_EUNSUPPORTED not supported.
 * @retval RISK_EIO failure. @retval RISK_EINVAL NULL argument, or the
 *         journal itself. @retval RISK_EBUSY path is a journal another
 *         store has open for writing (nothing written).
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_backup(risk_engine *engine, const char *path);

/** @} */

/* ------------------------------------------------------------------ */
/** @defgroup beyond Audit chain, what-if, receipts (SPEC §10)
 *  @{ */

/** @brief The version of #risk_anchor this header describes. */
#define RISK_ANCHOR_VERSION 1

/**
 * @brief A history anchor (R-AU-3): the highest sequence number and a
 *        SHA-256 over every subject's chain head, to keep elsewhere.
 */
typedef struct risk_anchor {
    uint32_t version;  /**< #RISK_ANCHOR_VERSION. */
    uint32_t subjects; /**< Number of chains (users with history, and the policy set). */
    uint64_t seq;      /**< Highest sequence number covered (0: empty history). */
    uint8_t hash[32];  /**< SHA-256 over the sorted (subject, head) pairs. */
} risk_anchor;

/** @brief Bytes risk_anchor_format() needs, with the terminating NUL. */
#define RISK_ANCHOR_TEXT_MAX 128

/**
 * @brief Export the anchor of the current history (R-AU-3).
 * @param[in] engine the engine. @param[out] out the anchor.
 * @retval RISK_OK done. @retval RISK_EUNSUPPORTED no read_history callback.
 * @retval RISK_EINVAL NULL argument. @retval RISK_ENOMEM out of memory.
 * @note Thread-safe; concurrent writers may add items after the anchor.
 * @since 0.1
 */
RISK_API int risk_engine_history_anchor(risk_engine *engine, risk_anchor *out);

/**
 * @brief Verify every history chain (R-AU-1, R-AU-2), optionally against an
 *        anchor taken before (R-AU-3).
 *
 * Recomputes each item's chain hash from the previous item of the same
 * subject; compares each user's (and the policy set's) stored head with
 * the last item of its chain, and a user record at its chain's end with
 * the level and state that item left (a record whose risk was edited in
 * the store; its other fields are in no item); with an anchor, recomputes the anchor over
 * the items up to its sequence number and compares. The users' heads are
 * compared only on a store with a `list_users` callback (the built-in
 * stores have one); without it, items removed from the end of a user's
 * chain are found only against an anchor.
 *
 * It may run beside writers: a stored head that the history it read has
 * not reached yet (a commit since) is not a mismatch until the history,
 * read on, has shown it; a head that nothing more reaches after about a
 * quarter of a second without new items is one.
 * @param[in] engine the engine. @param[in] anchor an anchor, or NULL.
 * @param[out] bad_seq optional: the sequence number of the first item that
 *             does not match, or 0 when the damage is not one item (a
 *             truncated chain, a different anchor).
 * @retval RISK_OK every chain (and the anchor) matches.
 * @retval RISK_EVERIFY a mismatch; risk_error_last() says which and why.
 * @retval RISK_EUNSUPPORTED no read_history callback. @retval RISK_EINVAL bad anchor.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_verify_history(risk_engine *engine, const risk_anchor *anchor,
                                        uint64_t *bad_seq);

/**
 * @brief Write an anchor as one line of text: `librisk-anchor 1 SEQ SUBJECTS HEX`.
 * @param[out] buf destination. @param[in] cap its size (≥ #RISK_ANCHOR_TEXT_MAX is enough).
 * @param[in] anchor the anchor.
 * @retval RISK_OK written. @retval RISK_ERANGE too small.
 * @retval RISK_EINVAL NULL argument, or a version other than #RISK_ANCHOR_VERSION.
 * @note Thread-safe: reads only its arguments and writes only its outputs.
 * @since 0.1
 */
RISK_API int risk_anchor_format(char *buf, size_t cap, const risk_anchor *anchor);

/**
 * @brief Parse the text of risk_anchor_format() (surrounding blanks allowed).
 *
 * Exactly that form: single spaces, version 1, decimal digits without a
 * sign, a sequence number and subject count in range, 64 lower-case hex
 * digits; anything else is refused, never read as another anchor.
 * @param[out] out the anchor. @param[in] text the text.
 * @retval RISK_OK parsed. @retval RISK_EINVAL malformed.
 * @note Thread-safe: reads only its arguments and writes only its outputs.
 * @since 0.1
 */
RISK_API int risk_anchor_parse(risk_anchor *out, const char *text);

/** @brief The result of a policy what-if (R-WI-1). */
typedef struct risk_what_if risk_what_if;

/**
 * @brief Evaluate candidate policies against every stored user at a time,
 *        changing nothing (R-WI-1, R-WI-2).
 *
 * Each user is decided as risk_engine_sign_in() would decide at `at` with
 * these policies: one pass over the users; events are read only for users
 * whose level changes by aging before `at`.
 * @param[out] out the result, owned by the caller.
 * @param[in] engine the engine. @param[in] policies the candidate set.
 * @param[in] n its size. @param[in] at the time of evaluation.
 * @retval RISK_OK done. @retval RISK_EUNSUPPORTED no list_users callback.
 * @retval RISK_EINVAL invalid argument, or two policies of one name (a
 *         store holds one per name: such a set could never be installed).
 * @retval RISK_ENOMEM out of memory.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_engine_what_if(risk_what_if **out, risk_engine *engine,
                                 const risk_policy *const *policies, size_t n, int64_t at);
/**
 * @brief Free a what-if result; NULL is accepted. @param[in] w the result.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API void risk_what_if_free(risk_what_if *w);
/**
 * @brief Users evaluated. @param[in] w the result. @returns the count.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API size_t risk_what_if_total(const risk_what_if *w);
/**
 * @brief Users with a given decision and reason.
 * @param[in] w the result. @param[in] decision a #risk_decision. @param[in] reason a #risk_reason.
 * @returns the count (0 for values out of range).
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API size_t risk_what_if_count(const risk_what_if *w, risk_decision decision,
                                   risk_reason reason);
/**
 * @brief The i-th user (by id) with a decision and reason: page with i.
 * @param[in] w the result. @param[in] decision the decision. @param[in] reason the reason.
 * @param[in] i index below risk_what_if_count().
 * @returns borrowed id, or NULL out of range.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API const char *risk_what_if_user(const risk_what_if *w, risk_decision decision,
                                       risk_reason reason, size_t i);
/**
 * @brief The time evaluated. @param[in] w the result. @returns ms.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API int64_t risk_what_if_at(const risk_what_if *w);

/**
 * @brief Ask for a receipt with the next sign-ins filled into this verdict
 *        (R-RC-1). The engine needs a receipt key in its options.
 * @param[in,out] v the verdict. @param[in] want 1 to ask, 0 to stop.
 * @retval RISK_OK set. @retval RISK_EINVAL NULL or want not 0/1.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API int risk_verdict_want_receipt(risk_verdict *v, int want);
/**
 * @brief The receipt of the last sign-in, if one was asked for.
 *
 * Text, one `key=value` per line: `librisk-receipt 1`, user_id, at,
 * decision, reason, level, policy, one `event=` per counted event, and
 * `mac=` the hex HMAC-SHA-256 of everything before it.
 * @param[in] v the verdict.
 * @returns borrowed text, or NULL.
 * @note Thread safety: as every handle function: many threads may read one
 *       handle, none may change it meanwhile; distinct handles are
 *       independent.
 * @since 0.1
 */
RISK_API const char *risk_verdict_receipt(const risk_verdict *v);
/**
 * @brief Verify a receipt under a key (R-RC-1).
 * @param[in] receipt the text. @param[in] key the key. @param[in] key_len its length.
 * @retval RISK_OK authentic and well-formed.
 * @retval RISK_EVERIFY altered, malformed, or another key.
 * @retval RISK_EINVAL NULL argument.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_receipt_verify(const char *receipt, const uint8_t *key, size_t key_len);

/** @} */

/* ------------------------------------------------------------------ */
/** @defgroup stores Shipped stores
 *
 * Both fill a #risk_store callback table, which `<librisk/store.h>`
 * defines: an application that opens one of these stores includes that
 * header too (its other declarations are for store implementers).
 *  @{ */

/**
 * @brief Create an in-memory store (R-ST-5).
 * @param[out] out the callback table to pass to risk_engine_new().
 * @retval RISK_OK created. @retval RISK_EINVAL NULL. @retval RISK_ENOMEM out of memory.
 * @note Thread-safe: each call fills its own table; the store it makes may be
 *       used by any number of threads and engines at once.
 * @since 0.1
 */
RISK_API int risk_memory_store_new(risk_store *out);

/**
 * @brief Journal durability modes (docs/journal-format.md, "Durability").
 *
 * In every mode a crash leaves a prefix of the committed transactions,
 * each whole. FULL: nothing acknowledged is ever lost. NORMAL and OFF
 * buffer commits in memory and write them every sync_interval_ms (and
 * when the buffer fills, on history reads, compaction, backup, close), so
 * a crash or kill -9 may lose the commits of about that last window.
 */
typedef enum risk_durability {
    RISK_DURABILITY_FULL = 0,   /**< A commit returns once durable (default). */
    RISK_DURABILITY_NORMAL = 1, /**< Written and synced in the background every sync_interval_ms. */
    RISK_DURABILITY_OFF = 2     /**< Written in the background, never synced (tests, bulk loads). */
} risk_durability;

/** @brief The version of #risk_journal_options this header describes. */
#define RISK_JOURNAL_OPTIONS_VERSION 1

/** @brief Journal store options. */
typedef struct risk_journal_options {
    uint32_t version;          /**< #RISK_JOURNAL_OPTIONS_VERSION. */
    uint32_t durability;       /**< A #risk_durability. */
    uint32_t read_only;        /**< 1: open read-only beside a writer. */
    uint32_t sync_interval_ms; /**< For #RISK_DURABILITY_NORMAL; 0 means 100. */
} risk_journal_options;

/** @brief Static initialiser of #risk_journal_options. */
#define RISK_JOURNAL_OPTIONS_INIT { RISK_JOURNAL_OPTIONS_VERSION, 0, 0, 0 }

/** @brief What opening a journal found. */
typedef struct risk_journal_stats {
    uint32_t version;          /**< Set to 1 by the library. */
    uint32_t reserved;         /**< Zero. */
    uint64_t records_replayed; /**< Committed transactions replayed. */
    uint64_t bytes_dropped;    /**< Bytes of a torn tail dropped (and truncated when writable). */
    uint64_t file_bytes;       /**< The journal's length after recovery: the file's size (a read-only open leaves a torn tail of bytes_dropped on disk beyond it). */
} risk_journal_stats;

/**
 * @brief Open (or create) a journal file store (R-CC-3).
 * @param[out] out the callback table to pass to risk_engine_new().
 * @param[in] path the journal file. @param[in] opts options, NULL for defaults.
 * @param[out] stats optional: what recovery found (all zero, version 1, when the open fails).
 * @retval RISK_OK open. @retval RISK_EBUSY another writer holds it.
 * @retval RISK_ECORRUPT damage before the tail (offset in the message).
 * @retval RISK_EIO I/O failure. @retval RISK_EINVAL invalid argument.
 * @retval RISK_ENOMEM out of memory. @retval RISK_ENOTFOUND read-only open of a missing
 *         file, or a directory of the path that does not exist.
 * @note Thread-safe: each call fills its own table; the store it makes may be
 *       used by any number of threads and engines at once.
 * @since 0.1
 */
RISK_API int risk_journal_open(risk_store *out, const char *path,
                               const risk_journal_options *opts, risk_journal_stats *stats);

/**
 * @brief Check a journal file frame by frame without opening it as a store.
 *
 * Reads the file only (no lock, no write, no truncation), so it may run
 * beside a writer; a frame being appended at that moment shows as a torn
 * tail. Every record of every frame is decoded as recovery would.
 * docs/journal-format.md describes what is checked.
 * @param[in] path the journal file.
 * @param[out] stats optional: frames checked (records_replayed) and the
 *             file size; bytes_dropped is always 0. Filled also when the
 *             check returns RISK_ECORRUPT: then the frames before the
 *             damage.
 * @retval RISK_OK every byte is a valid header followed by valid frames.
 * @retval RISK_ECORRUPT a bad header, a damaged frame or a torn tail (the
 *         byte offset is in the message). @retval RISK_ENOTFOUND no such file.
 * @retval RISK_EIO I/O failure. @retval RISK_EINVAL NULL or empty path.
 * @retval RISK_ENOMEM out of memory.
 * @note Thread-safe. @since 0.1
 */
RISK_API int risk_journal_check(const char *path, risk_journal_stats *stats);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* LIBRISK_H */
