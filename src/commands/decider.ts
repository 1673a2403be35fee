// The shape every decider has (Emmett's: a plain object of three pure functions). The plan and session
// deciders are values of it; the command handler and the given/when/then tests are written against it.
/** `Context` is what decide() sees: the state itself, or the state with what else it needs (a session decides knowing its current plan). */
export interface Decider<State, Command, Event, Context = State> {
  initialState(): State;
  decide(command: Command, context: Context): Event[];
  evolve(state: State, event: Event): State;
}

/** The state after `events`, folded from the initial state. */
export function fold<State, Event>(decider: Pick<Decider<State, unknown, Event>, 'initialState' | 'evolve'>, events: readonly Event[]): State {
  return events.reduce((state, event) => decider.evolve(state, event), decider.initialState());
}
