"""Domain services: plain functions over the database that know nothing of Telegram.

Handlers call these with ids and text and render what they return.
"""
