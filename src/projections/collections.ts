// The collections of the views projection, named once: each read model's module and the session's
// bookkeeping (which must delete across all of them) import the names from here.
export const SESSIONS = 'sessions';
export const PLANS = 'plans';
export const APPROVALS = 'approvals';
export const HISTORY = 'history';
export const CONVERSATION = 'conversation';
export const SESSION_CONTENTS = 'session_contents';
export const RUNS = 'runs';
