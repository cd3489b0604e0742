"""Stand-ins for the outside world that tests and benchmarks share: LLM providers' HTTP servers and a simulated world.

``scripted_server`` answers the OpenAI and Anthropic wire protocols with scripted replies;
``world`` serves a Chat Completions model whose answers are right with a hidden probability
(the optimizer's proving ground). They import no platform package, and no platform package
imports them (``lint-imports``): the world's hidden quality function stays out of the optimizer's
reach.
"""
